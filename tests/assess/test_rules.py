"""Every rule: one VM that triggers it, one that does not; the remedy names the VM's real objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hvbackup.assess.finding import SEVERITIES
from hvbackup.assess.guest_report import GuestReport
from hvbackup.assess.policy import Policy
from hvbackup.assess.rules import RULES, Facts
from hvbackup.hyperv.enums import (
    CheckpointType,
    HeartbeatStatus,
    IntegrationServiceStatus,
    OperationalStatus,
    SnapshotType,
    VhdFormat,
    VhdType,
    VMState,
)
from hvbackup.hyperv.model import Checkpoint, FibreChannelAdapter, Firmware, Host, Orphan
from tests.assess.vms import HEALTHY, disk, guest_finding, guest_report, nic, passthrough, service, services, vm

MIB = 1024 * 1024
AGENT = guest_report()
DEFAULT_POLICY = Policy()


def facts(
    machine=HEALTHY, guest: dict[str, Any] | None = AGENT, policy: Policy = DEFAULT_POLICY, orphans=(), host=None
) -> Facts:
    return Facts(machine, policy, GuestReport(guest) if guest is not None else None, tuple(orphans), host)


HOST_2012R2 = Host("HV2012", os_caption="Microsoft Windows Server 2012 R2 Datacenter", os_build="9600")
HOST_2016 = Host("HV2016", os_caption="Microsoft Windows Server 2016 Datacenter", os_build="14393")
UNREADABLE = "Getting the mounted storage instance for the path failed: the file was not found"


RECOVERY_ORPHAN = Orphan(
    kind="recovery-checkpoint",
    vm_id=HEALTHY.id,
    vm_name="web-01",
    id="0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f",
    name="hvbackup-20261124T220000Z",
    created="2026-11-24T22:00:00Z",
    is_ours=True,
)
AVHDX_ORPHAN = Orphan(
    kind="avhdx", vm_id=HEALTHY.id, vm_name="web-01", path="D:\\Hyper-V\\web-01\\Virtual Hard Disks\\disk0_5A9D.avhdx"
)
NFS_SKIP = {
    "mountpoint": "/srv/data",
    "fstype": "nfs4",
    "source": "fs01:/export/data",
    "reason": "network filesystem (nfs4) cannot be frozen from the guest",
}
EFI_SKIP = {
    "mountpoint": "/boot/efi",
    "fstype": "vfat",
    "source": "/dev/sda1",
    "reason": "vfat is skipped (as hv_vss_daemon does)",
}

# rule id: (facts that trigger it, expected severity, text the remedy must hold, facts that do not trigger it)
CASES: dict[str, tuple[Facts, str, str, Facts]] = {
    "vss-ic-disabled": (
        facts(vm(integration_services=services(VSS=service("VSS", enabled=False)))),
        "blocker",
        "Enable-VMIntegrationService -VMName 'web-01' -Name 'VSS'",
        facts(),
    ),
    "kvp-unavailable": (
        facts(vm(guest={}), policy=Policy(consistency="application")),
        "warning",
        "hv-kvp-daemon",
        facts(vm(state=VMState.Off, guest={})),
    ),
    "vss-ic-unreachable": (
        facts(
            vm(
                integration_services=services(
                    VSS=service("VSS", status=IntegrationServiceStatus.NoContact, status_text="No Contact")
                )
            )
        ),
        "blocker",
        "hvbackup-guest install",
        facts(),
    ),
    "vss-ic-protocol-mismatch": (
        facts(vm(integration_services=services(VSS=service("VSS", status=IntegrationServiceStatus.ProtocolMismatch)))),
        "info",
        "none needed",
        facts(),
    ),
    "heartbeat-lost": (facts(vm(heartbeat=HeartbeatStatus.LostCommunication)), "warning", "hv_utils", facts()),
    "no-vss-daemon": (facts(guest=guest_report(daemons={})), "blocker", "hvbackup-guest install", facts()),
    "stock-vss-daemon": (
        facts(guest=guest_report(daemons={"hv_vss_daemon": 401})),
        "advice",
        "hvbackup-guest install",
        facts(),
    ),
    "guest-unknown": (facts(guest=None), "info", "hvbackup-guest check", facts()),
    "time-sync": (
        facts(guest=guest_report(findings=[guest_finding("no-time-sync", remedy="apt-get install -y chrony")])),
        "warning",
        "apt-get install -y chrony",
        facts(),
    ),
    "shutdown-ic": (
        facts(
            vm(integration_services=services(Shutdown=service("Shutdown", enabled=False))),
            policy=Policy(allow_downtime="shutdown"),
        ),
        "warning",
        "Enable-VMIntegrationService -VMName 'web-01' -Name 'Shutdown'",
        facts(policy=Policy(allow_downtime="shutdown")),
    ),
    "legacy-nic": (
        facts(vm(generation=1, firmware=None, network_adapters=(nic("Legacy Network Adapter", legacy=True),))),
        "warning",
        "Remove-VMNetworkAdapter -VMName 'web-01' -Name 'Legacy Network Adapter'; Add-VMNetworkAdapter -VMName 'web-01' -SwitchName 'LAN' -StaticMacAddress '00155D0A1B2C'",
        facts(),
    ),
    "mixed-nics": (
        facts(
            vm(
                generation=1,
                firmware=None,
                network_adapters=(nic(), nic("Legacy Network Adapter", legacy=True, mac="00155D0A1B2D")),
            )
        ),
        "warning",
        "Remove-VMNetworkAdapter -VMName 'web-01' -Name 'Legacy Network Adapter'",
        facts(vm(generation=1, firmware=None, network_adapters=(nic("Legacy Network Adapter", legacy=True),))),
    ),
    "clustered-dynamic-mac": (
        facts(vm(is_clustered=True, network_adapters=(nic(dynamic=True),))),
        "warning",
        "Set-VMNetworkAdapter -VMName 'web-01' -Name 'Network Adapter' -StaticMacAddress '00155D0A1B2C'",
        facts(vm(is_clustered=True, network_adapters=(nic(dynamic=False),))),
    ),
    "passthrough-disk": (
        facts(vm(disks=(disk(0), passthrough(1)))),
        "blocker",
        "Add-VMHardDiskDrive -VMName 'web-01'",
        facts(),
    ),
    "fibre-channel": (
        facts(vm(fibre_channel_adapters=(FibreChannelAdapter("Fibre Channel Adapter", "SAN-A"),))),
        "blocker",
        "Add-VMHardDiskDrive -VMName 'web-01'",
        facts(),
    ),
    "unreadable-disk": (
        facts(vm(disks=(disk(0), disk(1, vhd_error=UNREADABLE, format=None, type=None, size=0)))),
        "blocker",
        "Remove-VMHardDiskDrive -VMName 'web-01' -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 1",
        facts(),
    ),
    "host-version": (
        facts(host=HOST_2012R2),
        "blocker",
        "Export-VM -Name 'web-01'",
        facts(host=HOST_2016),
    ),
    "iscsi-disk": (
        facts(
            guest=guest_report(iscsi_sessions=[{"target": "iqn.2026-01.com.example:db", "portal": "192.0.2.5:3260"}])
        ),
        "warning",
        "VHDX",
        facts(),
    ),
    "smb-disk": (
        facts(vm(disks=(disk(0, path="\\\\fs01\\vms\\web-01\\disk0.vhdx"),))),
        "warning",
        "Move-VMStorage -VMName 'web-01'",
        facts(),
    ),
    "shared-vhdx": (
        facts(vm(disks=(disk(0), disk(1, is_shared=True, type=VhdType.Fixed)))),
        "blocker",
        "Convert-VHD -Path 'D:\\Hyper-V\\web-01\\Virtual Hard Disks\\disk1.vhdx' -DestinationPath 'D:\\Hyper-V\\web-01\\Virtual Hard Disks\\disk1.vhds'",
        facts(vm(disks=(disk(0), disk(1, is_shared=True, format=VhdFormat.VHDSet, path="D:\\shared\\disk1.vhds")))),
    ),
    "vhd-format": (
        facts(vm(disks=(disk(0, format=VhdFormat.VHD, path="D:\\VMs\\web-01.vhd", block_size=2 * MIB),))),
        "warning",
        "Convert-VHD -Path 'D:\\VMs\\web-01.vhd' -DestinationPath 'D:\\VMs\\web-01.vhdx' -BlockSizeBytes 1MB",
        facts(),
    ),
    "vhdx-block-size": (
        facts(vm(disks=(disk(0, block_size=32 * MIB),))),
        "advice",
        "-VHDType Dynamic -BlockSizeBytes 1MB; Set-VMHardDiskDrive -VMName 'web-01' -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 0",
        facts(vm(disks=(disk(0, type=VhdType.Fixed, block_size=0),))),
    ),
    "config-version": (
        facts(vm(version="5.0")),
        "blocker",
        "Update-VMVersion -Name 'web-01'",
        facts(vm(version="8.0")),
    ),
    "checkpoint-type": (
        facts(vm(checkpoint_type=CheckpointType.Standard)),
        "warning",
        "Set-VM -Name 'web-01' -CheckpointType Production",
        facts(),
    ),
    "orphan-checkpoint": (
        facts(orphans=[RECOVERY_ORPHAN]),
        "warning",
        "Get-VMSnapshot -VMName 'web-01' | Where-Object Id -eq '0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f' | Remove-VMSnapshot",
        facts(orphans=[AVHDX_ORPHAN]),
    ),
    "orphan-avhdx": (
        facts(orphans=[AVHDX_ORPHAN]),
        "warning",
        "Remove-Item -LiteralPath 'D:\\Hyper-V\\web-01\\Virtual Hard Disks\\disk0_5A9D.avhdx'",
        facts(orphans=[RECOVERY_ORPHAN]),
    ),
    "user-checkpoints": (
        facts(
            vm(checkpoints=(Checkpoint(id="c1", name="before upgrade", vm_id=HEALTHY.id, type=SnapshotType.Standard),))
        ),
        "advice",
        "Get-VMSnapshot -VMName 'web-01' -SnapshotType Standard",
        facts(
            vm(
                checkpoints=(
                    Checkpoint(id="c2", name="hvbackup-20261125T000000Z", vm_id=HEALTHY.id, type=SnapshotType.Recovery),
                )
            )
        ),
    ),
    "vm-busy": (
        facts(vm(operational_status=(OperationalStatus.Ok, OperationalStatus.MergingDisks))),
        "warning",
        "Get-VM -Name 'web-01'",
        facts(),
    ),
    "secure-boot-template": (
        facts(vm(firmware=Firmware(secure_boot=True, secure_boot_template="MicrosoftWindows"))),
        "warning",
        "Set-VMFirmware -VMName 'web-01' -SecureBootTemplate MicrosoftUEFICertificateAuthority",
        facts(vm(firmware=Firmware(secure_boot=False, secure_boot_template="MicrosoftWindows"))),
    ),
    "io-scheduler": (
        facts(
            guest=guest_report(disks=[{"name": "sdb", "scheduler": "mq-deadline", "available": "[mq-deadline] none"}])
        ),
        "advice",
        "echo none > /sys/block/sdb/queue/scheduler && echo ",
        facts(),
    ),
    "fstab-device-name": (
        facts(guest=guest_report(findings=[guest_finding("fstab-device-name", remedy="sed -i ... /etc/fstab")])),
        "warning",
        "/etc/fstab",
        facts(),
    ),
    "xfs-relatime": (
        facts(guest=guest_report(findings=[guest_finding("xfs-relatime", "advice", "mount -o remount,noatime /srv")])),
        "advice",
        "noatime",
        facts(),
    ),
    "unfrozen-data-mount": (
        facts(guest=guest_report(freeze_skips=[NFS_SKIP, EFI_SKIP])),
        "warning",
        "/srv/data",
        facts(guest=guest_report(freeze_skips=[EFI_SKIP])),
    ),
    "no-trim": (
        facts(guest=guest_report(findings=[guest_finding("no-trim", "advice", "systemctl enable --now fstrim.timer")])),
        "advice",
        "systemctl enable --now fstrim.timer",
        facts(),
    ),
}

RULE_BY_ID = {r.id: r for r in RULES}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULE_BY_ID)


def test_rule_ids_are_unique_and_severities_known():
    assert len({r.id for r in RULES}) == len(RULES)
    assert all(r.severity in SEVERITIES and r.source for r in RULES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_triggers(rule_id: str):
    trigger, severity, remedy, _ = CASES[rule_id]
    findings = RULE_BY_ID[rule_id].check(trigger)
    assert findings, f"{rule_id} did not trigger"
    assert {f.id for f in findings} == {rule_id}
    assert findings[0].severity == severity
    assert remedy in findings[0].remedy
    assert findings[0].title and findings[0].evidence


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_stays_quiet(rule_id: str):
    _, _, _, clean = CASES[rule_id]
    assert RULE_BY_ID[rule_id].check(clean) == []


def test_healthy_vm_with_the_agent_has_no_findings():
    findings = [f for r in RULES for f in r.check(facts())]
    assert findings == []


def test_vss_disabled_on_an_off_vm_is_a_warning_for_later():
    off = facts(vm(state=VMState.Off, integration_services=services(VSS=service("VSS", enabled=False))))
    [finding] = RULE_BY_ID["vss-ic-disabled"].check(off)
    assert finding.severity == "warning"
    assert "once it runs" in finding.evidence


def test_vss_missing_uses_the_2012r2_name_when_that_is_what_the_host_has():
    old = facts(vm(integration_services=services(VSS=service("Backup (volume snapshot)", enabled=False))))
    [finding] = RULE_BY_ID["vss-ic-disabled"].check(old)
    assert "-Name 'Backup (volume snapshot)'" in finding.remedy


def test_protocol_mismatch_read_from_the_secondary_status_text():
    text = "The protocol version of the component installed in the virtual machine does not match the version expected"
    machine = vm(integration_services=services(VSS=service("VSS", secondary_status_text=text)))
    [finding] = RULE_BY_ID["vss-ic-protocol-mismatch"].check(facts(machine))
    assert finding.severity == "info"


def test_time_sync_host_service_off_alone_is_advice():
    machine = vm(integration_services=services(Time_Synchronization=service("Time Synchronization", enabled=False)))
    [finding] = RULE_BY_ID["time-sync"].check(facts(machine))
    assert finding.severity == "advice"
    assert finding.remedy == "Enable-VMIntegrationService -VMName 'web-01' -Name 'Time Synchronization'"


@pytest.mark.parametrize(
    ("vss_enabled", "consistency", "severity"),
    [(True, "filesystem", "info"), (True, "crash", "warning"), (False, "filesystem", "blocker")],
)
def test_production_only_against_the_policy(vss_enabled: bool, consistency: str, severity: str):
    machine = vm(
        checkpoint_type=CheckpointType.ProductionOnly,
        integration_services=services(VSS=service("VSS", enabled=vss_enabled)),
    )
    [finding] = RULE_BY_ID["checkpoint-type"].check(facts(machine, policy=Policy(consistency=consistency)))
    assert finding.severity == severity


def test_standard_checkpoints_are_only_info_when_crash_consistency_is_accepted():
    machine = vm(checkpoint_type=CheckpointType.Standard)
    [finding] = RULE_BY_ID["checkpoint-type"].check(facts(machine, policy=Policy(consistency="crash")))
    assert finding.severity == "info"


def test_names_with_quotes_are_quoted_for_powershell():
    machine = vm(name="o'brien", integration_services=services(VSS=service("VSS", enabled=False)))
    [finding] = RULE_BY_ID["vss-ic-disabled"].check(facts(machine))
    assert "-VMName 'o''brien'" in finding.remedy


def test_one_finding_per_legacy_adapter_and_per_passthrough_disk():
    machine = vm(
        generation=1,
        network_adapters=(nic("Legacy 1", legacy=True), nic("Legacy 2", legacy=True, mac="00155D0A1B2D")),
        disks=(disk(0), passthrough(1, 3), passthrough(2, 4)),
    )
    assert len(RULE_BY_ID["legacy-nic"].check(facts(machine))) == 2
    assert [f.evidence.split(":")[0:3] for f in RULE_BY_ID["passthrough-disk"].check(facts(machine))] == [
        ["SCSI", "0", "1"],
        ["SCSI", "0", "2"],
    ]


def test_guest_findings_keep_the_guest_remedy_and_run_in_the_guest():
    [finding] = RULE_BY_ID["no-trim"].check(
        facts(guest=guest_report(findings=[guest_finding("no-trim", "advice", "systemctl enable --now fstrim.timer")]))
    )
    assert finding.run_on == "guest"
    assert finding.remedy == "systemctl enable --now fstrim.timer"


def test_every_rule_is_documented_with_its_source():
    docs = (Path(__file__).parents[2] / "docs" / "ASSESS.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`") for line in docs.splitlines() if line.startswith("| `")}
    assert {r.id for r in RULES} <= rows
