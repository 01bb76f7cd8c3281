"""`hvbackup-guest check`: is this guest ready for live, application-consistent backups?

Each check is one small function reading the guest tree (a fixture root in tests) and returning
findings with an id, a severity (blocker, warning, advice, info) and the exact remedy command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hvbackup.guest.readiness.disks import check_fstab_device_names, check_io_scheduler, disk_inventory
from hvbackup.guest.readiness.findings import Finding, GuestTree
from hvbackup.guest.readiness.mounts import check_freeze_coverage, check_xfs_relatime, freeze_plan
from hvbackup.guest.readiness.network import check_legacy_nics, check_mixed_nics, nic_inventory
from hvbackup.guest.readiness.platform import (
    check_hv_modules,
    check_vss_daemon,
    check_vss_device,
    detect_hyperv,
    vss_daemon_inventory,
)
from hvbackup.guest.readiness.services import check_time_sync, check_trim

Check = Callable[[GuestTree], list[Finding]]

HYPERV_CHECKS: list[Check] = [check_hv_modules, check_vss_device, check_vss_daemon, check_legacy_nics, check_mixed_nics]
GENERAL_CHECKS: list[Check] = [
    check_io_scheduler,
    check_fstab_device_names,
    check_freeze_coverage,
    check_xfs_relatime,
    check_trim,
    check_time_sync,
]

SEVERITY_ORDER = {"blocker": 0, "warning": 1, "advice": 2, "info": 3}


def run_checks(root: Path = Path("/")) -> dict[str, Any]:
    tree = GuestTree(root)
    hyperv = detect_hyperv(tree)
    findings: list[Finding] = []
    if hyperv["hyperv"]:
        for check in HYPERV_CHECKS:
            findings += check(tree)
    else:
        findings.append(
            Finding(
                "not-hyperv",
                "info",
                "This machine is not a Hyper-V guest",
                hyperv["evidence"],
                "none: the Hyper-V checks do not apply here",
            )
        )
    for check in GENERAL_CHECKS:
        findings += check(tree)
    findings.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    plan = freeze_plan(tree)
    return {
        "hyperv": hyperv["hyperv"],
        "hyperv_evidence": hyperv["evidence"],
        "findings": [f.to_json() for f in findings],
        "freeze_covers": [m.to_json() for m in plan.covers],
        "freeze_skips": [s.to_json() for s in plan.skips],
        "vss_daemon": vss_daemon_inventory(tree),
        "nics": nic_inventory(tree),
        "disks": disk_inventory(tree),
    }


__all__ = ["Finding", "GuestTree", "run_checks"]
