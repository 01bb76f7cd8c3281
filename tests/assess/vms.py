"""VM model objects for the assessment tests: a healthy Linux VM, and `vm(...)` to change what a test needs.

The values follow the inventory shapes in tests/hyperv/fixtures/inventory.json (Get-VM, Get-VMIntegrationService,
Get-VMNetworkAdapter, Get-VMHardDiskDrive + Get-VHD, Get-VMFirmware).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hvbackup.hyperv.enums import (
    CheckpointType,
    ControllerType,
    HeartbeatStatus,
    IntegrationServiceStatus,
    OperationalStatus,
    VhdFormat,
    VhdType,
    VMState,
)
from hvbackup.hyperv.model import VM, Firmware, IntegrationService, Memory, NetworkAdapter, VirtualDisk

GIB = 1024**3
SERVICES = (
    "Guest Service Interface",
    "Heartbeat",
    "Key-Value Pair Exchange",
    "Shutdown",
    "Time Synchronization",
    "VSS",
)


def service(
    name: str, enabled: bool = True, status: IntegrationServiceStatus = IntegrationServiceStatus.Ok, **kw: Any
) -> IntegrationService:
    return IntegrationService(
        name=name, enabled=enabled, status=status if enabled else IntegrationServiceStatus.Unknown, **kw
    )


def services(**changes: IntegrationService | None) -> tuple[IntegrationService, ...]:
    """The usual services, with some replaced (`VSS=service("VSS", enabled=False)`) or removed (`VSS=None`)."""
    result = []
    for name in SERVICES:
        key = name.replace(" ", "_").replace("-", "_")
        if key in changes:
            if changes[key] is not None:
                result.append(changes[key])
        else:
            result.append(service(name, enabled=name != "Guest Service Interface"))
    return tuple(result)


def nic(
    name: str = "Network Adapter", *, legacy: bool = False, dynamic: bool = True, mac: str = "00155D0A1B2C"
) -> NetworkAdapter:
    return NetworkAdapter(name=name, mac_address=mac, dynamic_mac=dynamic, is_legacy=legacy, switch_name="LAN")


def disk(location: int = 0, **kw: Any) -> VirtualDisk:
    values: dict[str, Any] = {
        "controller_type": ControllerType.SCSI,
        "controller_number": 0,
        "controller_location": location,
        "path": f"D:\\Hyper-V\\web-01\\Virtual Hard Disks\\disk{location}.vhdx",
        "format": VhdFormat.VHDX,
        "type": VhdType.Dynamic,
        "size": 64 * GIB,
        "file_size": 10 * GIB,
        "block_size": 1024 * 1024,
        "logical_sector_size": 512,
        "physical_sector_size": 4096,
    }
    values.update(kw)
    return VirtualDisk(**values)


def passthrough(location: int = 1, number: int = 3) -> VirtualDisk:
    return VirtualDisk(
        controller_type=ControllerType.SCSI,
        controller_number=0,
        controller_location=location,
        path=f"Disk {number} 20.00 GB Bus 0 Lun {location} Target 0",
        passthrough_disk_number=number,
    )


HEALTHY = VM(
    id="6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b",
    name="web-01",
    state=VMState.Running,
    generation=2,
    version="10.0",
    checkpoint_type=CheckpointType.Production,
    heartbeat=HeartbeatStatus.OkApplicationsHealthy,
    operational_status=(OperationalStatus.Ok,),
    processor_count=2,
    memory=Memory(startup_bytes=4 * GIB),
    firmware=Firmware(secure_boot=True, secure_boot_template="MicrosoftUEFICertificateAuthority"),
    integration_services=services(),
    network_adapters=(nic(dynamic=False),),
    disks=(disk(0),),
    path="D:\\Hyper-V\\web-01",
    guest={  # the intrinsic Data Exchange items a running Linux guest's hv_kvp_daemon answers
        "FullyQualifiedDomainName": "web-01.example.com",
        "OSName": "Ubuntu",
        "OSVersion": "22.04",
        "IntegrationServicesVersion": "3.1",
        "NetworkAddressIPv4": "192.0.2.10",
    },
)


def vm(**changes: Any) -> VM:
    return dataclasses.replace(HEALTHY, **changes)


def guest_report(
    daemons: dict[str, int] | None = None,
    findings: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A readiness report in the `hvbackup-guest check --json` shape (docs/GUEST.md)."""
    report: dict[str, Any] = {
        "hyperv": True,
        "hyperv_evidence": "DMI sys_vendor='Microsoft Corporation' product_name='Virtual Machine'; 12 VMBus device(s)",
        "findings": findings or [],
        "freeze_covers": [{"mountpoint": "/", "fstype": "ext4", "source": "/dev/sda2", "dev": "8:2"}],
        "freeze_skips": [],
        "vss_daemon": {"running": {"hvbackup-guest": 812} if daemons is None else daemons, "units": {}},
        "nics": [{"name": "eth0", "driver": "hv_netvsc", "kind": "synthetic"}],
        "disks": [{"name": "sda", "scheduler": "none", "available": "[none] mq-deadline"}],
    }
    report.update(extra)
    return report


def guest_finding(finding_id: str, severity: str = "warning", remedy: str = "fix-it") -> dict[str, str]:
    return {
        "id": finding_id,
        "severity": severity,
        "title": f"guest says {finding_id}",
        "evidence": "seen in guest",
        "remedy": remedy,
    }
