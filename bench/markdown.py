"""Print bench/results.json as the Markdown tables of the README's performance section.

    .venv/bin/python bench/markdown.py [bench/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MIB = 1024 * 1024


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("results.json"))
    data = json.loads(path.read_text())
    m = data["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, Python {m['python']}, "
          f"restic {m['restic']}, borg {m['borg']}.\n")
    print("| tool | step | wall s | MB/s | peak RSS MiB | repository MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for run in data["runs"]:
        if run["tool"] != "hvbackup" or run["step"] in ("full backup", "1 % incremental", "restore"):
            rate = f"{run['throughput'] / 1e6:.0f}" if run["step"] != "1 % incremental" else "—"
            repo = f"{run['repo_size'] / MIB:.0f}" if run["repo_size"] else "—"
            print(f"| {run['tool']} | {run['step']} | {run['seconds']:.2f} | {rate} | {run['peak_rss'] / MIB:.0f} | {repo} |")
    print("\n| target | goal | measured | |")
    print("|---|---|---|---|")
    for t in data["targets"]:
        print(f"| {t['target']} | {t['goal']} | {t['measured']} | {'met' if t['met'] else 'missed'} |")
    scaling = [r for r in data["runs"] if r["step"].startswith("full backup, ")]
    print("\nScaling: " + ", ".join(f"{r['step'].split(', ')[1]}: {r['seconds']:.1f} s" for r in scaling))


if __name__ == "__main__":
    main()
