"""A small assessment report with one VM per verdict kind, for the report, HTML and CLI tests."""

from __future__ import annotations

from hvbackup.assess import Policy, assess_vm
from hvbackup.assess.report import Report
from tests.assess.vms import disk, guest_report, nic, passthrough, service, services, vm

POLICY = Policy("application", "never")


def sample_report(name: str = 'db-<01> & "co"') -> Report:
    """web-01 clean; `name` blocked (VSS off, a pass-through disk, no guest report); app-02 with warnings."""
    return Report(
        "hv01.example.com",
        POLICY,
        (
            assess_vm(vm(name="web-01"), POLICY, guest_report()),
            assess_vm(
                vm(
                    name=name,
                    integration_services=services(VSS=service("VSS", enabled=False)),
                    disks=(disk(0), passthrough(1)),
                ),
                POLICY,
                None,
            ),
            assess_vm(
                vm(name="app-02", is_clustered=True, network_adapters=(nic(),)),
                POLICY,
                guest_report(daemons={"hv_vss_daemon": 3}),
            ),
        ),
    )
