"""`hvbackup lab ...` from the command line: one JSON document with --json, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hvbackup.lab.processes import workload_pids

HVBACKUP = [sys.executable, "-c", "from hvbackup.cli.main import main; main()"]


def hvbackup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(HVBACKUP + list(args), capture_output=True, text=True, timeout=300)


def test_create_list_write_reset_destroy(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    created = hvbackup("lab", "create", str(lab), "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {"directory": str(lab.resolve()), "vms": []}
    assert json.loads(hvbackup("lab", "list", str(lab), "--json").stdout) == []

    again = hvbackup("lab", "create", str(lab))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not empty" in again.stderr

    missing = hvbackup("lab", "start", str(lab), "nope", "--json")
    assert missing.returncode == 1 and "no VM 'nope'" in missing.stderr
    assert json.loads(missing.stdout) == {"error": {"code": 1, "message": "no VM 'nope' on LAB-HV01"}}

    assert hvbackup("lab", "destroy", str(lab), "--json").returncode == 0
    assert not lab.exists()
    not_a_lab = hvbackup("lab", "list", str(lab))
    assert not_a_lab.returncode == 1 and "is not a lab host" in not_a_lab.stderr


def test_sample_vm_commands(tmp_path: Path) -> None:
    from hvbackup.lab import LabHost
    from hvbackup.lab.sample import SAMPLE_VMS, build_sample

    lab = LabHost.create(tmp_path / "lab")
    build_sample(lab, [s for s in SAMPLE_VMS if s.name == "mixed-nic"])
    try:
        bad = hvbackup("lab", "write", str(lab.directory), "mixed-nic", "/etc/passwd", "--text", "x")
        assert bad.returncode == 1 and "not a file the lab can write" in bad.stderr
        wrote = hvbackup(
            "lab", "write", str(lab.directory), "mixed-nic", "/var/lib/app/data.bin", "--text", "hello", "--json"
        )
        assert json.loads(wrote.stdout)["bytes"] == 5
        assert lab.read_guest_file("mixed-nic", "/var/lib/app/data.bin")[:5] == b"hello"
        assert (
            json.loads(hvbackup("lab", "reset-rct", str(lab.directory), "mixed-nic", "--json").stdout)[
                "change_tracking"
            ]
            == "reset"
        )
        saved = json.loads(hvbackup("lab", "save", str(lab.directory), "mixed-nic", "--json").stdout)
        assert saved["state"] == "Saved"
        assert (
            json.loads(hvbackup("lab", "start", str(lab.directory), "mixed-nic", "--json").stdout)["state"] == "Running"
        )
        down = json.loads(hvbackup("lab", "shutdown", str(lab.directory), "mixed-nic", "--json").stdout)
        assert down["state"] == "Off"
        rows = json.loads(hvbackup("lab", "list", str(lab.directory), "--json").stdout)
        assert [(r["name"], r["state"], r["guest"]) for r in rows] == [("mixed-nic", "Off", "stock")]
    finally:
        lab.destroy()
    assert not workload_pids(tmp_path)
