"""Measure FREEZE/THAW times through `vssd --socket` on ext4, xfs and btrfs loop filesystems under a writer.

Run as root: .venv/bin/python tests/guest/measure_freeze.py   (not a test: it prints figures for docs/GUEST.md)
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from guest_helpers import GUEST_CLI, LoopFactory
from guest_kernel import FakeKernel, start_vssd

from hvbackup.guest import protocol as p

base = Path(tempfile.mkdtemp())
f = LoopFactory(base)
try:
    for fstype in ("ext4", "xfs", "btrfs"):
        fs = f.make(fstype)
        w = subprocess.Popen(
            ["sh", "-c", f"while true; do dd if=/dev/urandom of={fs.mountpoint}/f bs=1M count=8 status=none; done"]
        )
        time.sleep(1)
        k = FakeKernel(base / f"{fstype}.sock")
        proc = start_vssd(GUEST_CLI, k.path, base / "state", base / "hooks", "--mount", fs.mountpoint)
        k.accept()
        vals = []
        for _ in range(5):
            t0 = time.monotonic()
            assert k.request(p.VSS_OP_FREEZE) == bytes(12)
            t1 = time.monotonic()
            assert k.request(p.VSS_OP_THAW) == bytes(12)
            t2 = time.monotonic()
            r = k.report()
            vals.append((t1 - t0, r["frozen_seconds"], t2 - t1))
        k.shutdown()
        proc.wait()
        w.kill()
        w.wait()
        print(
            fstype,
            "FREEZE reply ms: {}; frozen window ms: {}; THAW reply ms: {}".format(
                *tuple(",".join(f"{v[i] * 1000:.0f}" for v in vals) for i in range(3))
            ),
        )
finally:
    f.cleanup()
