"""Measure the lab host: sample build time, checkpoint and convert times per guest kind, the agent's
pause window, and the workload's write rate. Run: .venv/bin/python tests/lab/measure_lab.py"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from hvbackup.hyperv.enums import ConsistencyLevel
from hvbackup.lab import LabHost

ROUNDS = 5


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f} s"


def measure_checkpoints(lab: LabHost, name: str, level: ConsistencyLevel) -> dict[str, str]:
    create, convert, window = [], [], []
    for n in range(ROUNDS):
        started = time.monotonic()
        checkpoint = lab.create_recovery_checkpoint(lab.get_vm(name), level, f"hvbackup-measure-{n}")
        create.append(time.monotonic() - started)
        report = lab.guest_report(checkpoint.id)
        if report and report.get("by") == "vssd":
            window.append(report["frozen_seconds"])
        time.sleep(0.3)
        started = time.monotonic()
        lab.convert_to_reference_point(checkpoint)
        convert.append(time.monotonic() - started)
    result = {"vm": name, "level": level.name, "checkpoint": spread(create), "convert": spread(convert)}
    if window:
        result["agent FREEZE->THAW (workload paused)"] = spread(window)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        lab = LabHost.create(Path(tmp) / "lab", sample=True)
        print(f"sample build: {time.monotonic() - started:.1f} s")
        try:
            for name, level in (
                ("web-01", ConsistencyLevel.ApplicationConsistent),
                ("cluster-db", ConsistencyLevel.ApplicationConsistent),
                ("cluster-db", ConsistencyLevel.CrashConsistent),
            ):
                print(json.dumps(measure_checkpoints(lab, name, level)))
            record = lab.folder("web-01").load()
            log = lab.folder("web-01").change_log(next(iter(record.chains)), record)
            before = log.count()
            time.sleep(5)
            print(f"workload writes on web-01: {(log.count() - before) / 5:.0f} per second (4 KiB each)")
        finally:
            lab.destroy()


if __name__ == "__main__":
    sys.exit(main())
