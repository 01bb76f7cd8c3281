"""Measure how long a CLI `freeze` / `thaw` pair keeps a loop-mounted ext4 frozen (FIFREEZE to FITHAW).

Run as root: .venv/bin/python tests/guest/measure_freeze_thaw.py [ROUNDS] [OTHER_SRC]
(not a test: figures for docs/GUEST.md). Each round runs `hvbackup-guest freeze --mount M` and, as
soon as it returns, `hvbackup-guest thaw`, and takes the report's frozen_seconds. With OTHER_SRC
(another checkout's src/, e.g. before a change) the rounds alternate between the two, so both see
the same machine load.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from guest_helpers import GUEST_CLI, LoopFactory


def guest(src: str | None, *args: object) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if src:
        env["PYTHONPATH"] = src
    res = subprocess.run([*GUEST_CLI, *map(str, args), "--json"], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout)


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
variants = {"this checkout": None, **({sys.argv[2]: sys.argv[2]} if len(sys.argv) > 2 else {})}
base = Path(tempfile.mkdtemp())
loops = LoopFactory(base)
try:
    fs = loops.make("ext4")
    state, hooks = base / "state", base / "no-hooks"
    frozen: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, src in variants.items():
            guest(src, "freeze", "--state-dir", state, "--hooks-dir", hooks, "--mount", fs.mountpoint)
            frozen[name].append(guest(src, "thaw", "--state-dir", state)["frozen_seconds"])
    for name, values in frozen.items():
        print(
            f"{name}: frozen min {min(values):.3f} s, median {statistics.median(values):.3f} s, "
            f"max {max(values):.3f} s ({rounds} pairs)"
        )
finally:
    loops.cleanup()
