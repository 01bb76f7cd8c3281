"""Measure the lab host: sample build time, checkpoint and convert times per guest kind, the agent's
pause window, the workload's write rate, and what the PowerShell transport costs (the same calls
through `powershell_host(lab)`, in both job modes). Run: .venv/bin/python tests/lab/measure_lab.py"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from hvbackup.hyperv.enums import ConsistencyLevel
from hvbackup.hyperv.host import HyperVHost
from hvbackup.lab import LabHost, powershell_host

ROUNDS = 5


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f} s"


def measure_checkpoints(lab: LabHost, name: str, level: ConsistencyLevel, host: HyperVHost | None = None) -> dict:
    create, convert, window = [], [], []
    through = host or lab
    for n in range(ROUNDS):
        started = time.monotonic()
        checkpoint = through.create_recovery_checkpoint(through.get_vm(name), level, f"hvbackup-measure-{n}")
        create.append(time.monotonic() - started)
        report = through.guest_report(checkpoint.id)  # through KVP on PowerShellHost; None on the bare lab
        if report and report.get("by") == "vssd":
            window.append(report["frozen_seconds"])
        time.sleep(0.3)
        started = time.monotonic()
        through.convert_to_reference_point(checkpoint)
        convert.append(time.monotonic() - started)
    result = {"vm": name, "level": level.name, "checkpoint": spread(create), "convert": spread(convert)}
    if host is not None:
        result["through"] = "PowerShellHost over the lab transport"
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
            for jobs in ("sync", "async"):
                lab.set_behaviour(jobs=jobs, job_polls=2)
                host = powershell_host(lab)
                result = measure_checkpoints(lab, "cluster-db", ConsistencyLevel.CrashConsistent, host)
                print(json.dumps({**result, "jobs": jobs}))
                started = time.monotonic()
                for _ in range(ROUNDS):
                    host.inventory()
                print(
                    f"inventory of 7 VMs through the transport ({jobs}): {(time.monotonic() - started) / ROUNDS:.3f} s"
                )
            lab.set_behaviour(jobs="sync")
            started = time.monotonic()
            for _ in range(ROUNDS):
                lab.inventory()
            print(f"inventory of 7 VMs on the LabHost itself: {(time.monotonic() - started) / ROUNDS:.3f} s")
            record = lab.folder("web-01").load()
            log = lab.folder("web-01").change_log(next(iter(record.chains)), record)
            before = log.count()
            time.sleep(5)
            print(f"workload writes on web-01: {(log.count() - before) / 5:.0f} per second (4 KiB each)")
        finally:
            lab.destroy()


if __name__ == "__main__":
    sys.exit(main())
