"""The sample VMs of `hvbackup lab create --sample`: Linux guests reproducing the field cases of
docs/ASSESS.md §1-9 (and docs/HYPERV.md §3-4), each with real VHDX disks holding real ext4/xfs filesystems.

| VM | case |
|---|---|
| web-01 | Gen 2, Integration Services OK, the hvbackup guest agent with an application hook: application-consistent |
| legacy-app | no Integration Services (VSS "No Contact"), legacy NIC only: only saved-state or offline backups |
| mixed-nic | legacy + synthetic NIC (docs/ASSESS.md §6), stock hv_vss_daemon |
| cluster-db | clustered VM with a dynamic MAC (docs/ASSESS.md §6), stock daemon |
| passthru-01 | a pass-through disk beside its VHDX (docs/ASSESS.md §5): the pass-through disk is not captured |
| archive-01 | powered off |
| app-02 | OS disk (ext4) + data disk (xfs), the guest agent with a hook |
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hvbackup import kvpreport
from hvbackup.guest import kvp
from hvbackup.hyperv.enums import CheckpointType, ControllerType, IntegrationServiceStatus, VMState
from hvbackup.hyperv.model import VM, Firmware, Memory, NetworkAdapter, VirtualDisk
from hvbackup.lab import app, images
from hvbackup.lab.disks import drive_instance_id
from hvbackup.lab.guestchannel import kvp_dir
from hvbackup.lab.guesttree import GuestFacts, readiness
from hvbackup.lab.newvm import DEFAULT_ENABLED, make_vm_folder, services
from hvbackup.lab.record import WritableFile

NAMESPACE = uuid.UUID("6c1f27a4-52a7-4f6e-9b0e-3d1c6b0e7a10")
OS_DISK_SIZE = 256 * images.MiB
DATA_DISK_SIZE = 512 * images.MiB  # mkfs.xfs wants more than 300 MiB
ESP_SIZE = 32 * images.MiB
DATA_FILE = "/var/lib/app/data.bin"
DATA_FILE_SIZE = 8 * images.MiB
DB_FILE = "/srv/data/db/app.db"
DB_FILE_SIZE = 4 * images.MiB
SECURE_BOOT_LINUX = ("MicrosoftUEFICertificateAuthority", "272E7447-90A4-4563-A4B9-8E4AB00526CE")


@dataclass
class SampleVm:
    name: str
    generation: int
    guest: str  # agent | stock | none
    state: VMState = VMState.Running
    nics: list[tuple[bool, bool]] = field(default_factory=lambda: [(False, False)])  # (legacy, dynamic MAC)
    clustered: bool = False
    passthrough: bool = False
    data_disk: bool = False
    scheduler: str = "none"

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, self.name)).upper()

    def uid(self, what: str) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{self.name}:{what}"))


SAMPLE_VMS = [
    SampleVm("web-01", 2, "agent"),
    SampleVm("legacy-app", 1, "none", nics=[(True, False)], scheduler="mq-deadline"),
    SampleVm("mixed-nic", 1, "stock", nics=[(True, False), (False, False)], scheduler="mq-deadline"),
    SampleVm("cluster-db", 2, "stock", nics=[(False, True)], clustered=True),
    SampleVm("passthru-01", 2, "stock", passthrough=True),
    SampleVm("archive-01", 2, "stock", state=VMState.Off),
    SampleVm("app-02", 2, "agent", data_disk=True),
]


def disk_bytes(spec: SampleVm) -> int:
    return OS_DISK_SIZE + (DATA_DISK_SIZE if spec.data_disk else 0)


class NewLab(Protocol):
    """What building the sample needs of the lab host it fills (lab/host.py's LabHost)."""

    directory: Path

    def get_vm(self, vm: str) -> VM: ...

    def start_vm(self, vm: VM) -> None: ...


def build_sample(
    lab: NewLab, vms: list[SampleVm] | None = None, on_built: Callable[[SampleVm], None] = lambda s: None
) -> None:
    """Build the sample VMs into the lab and start the ones that should run."""
    for spec in vms or SAMPLE_VMS:
        build_vm(lab.directory, spec)
        on_built(spec)
    for spec in vms or SAMPLE_VMS:
        if spec.state == VMState.Running:
            lab.start_vm(lab.get_vm(spec.id))


def build_vm(directory: Path, spec: SampleVm) -> None:
    with tempfile.TemporaryDirectory(prefix=f"hvlab-{spec.name}-", dir=directory) as tmp:
        work = Path(tmp)
        controller = ControllerType.IDE if spec.generation == 1 else ControllerType.SCSI
        os_drive = drive_instance_id(spec.id, spec.id, int(controller), 0, 0)
        files = {os_drive: work / f"{spec.name}.vhdx"}
        writable = _os_disk(work, spec, files[os_drive], os_drive)
        disks = [VirtualDisk(controller, 0, 0, "", instance_id=os_drive)]
        if spec.data_disk:
            data_drive = drive_instance_id(spec.id, spec.id, int(ControllerType.SCSI), 0, 1)
            files[data_drive] = work / f"{spec.name}-data.vhdx"
            writable += _data_disk(work, spec, files[data_drive], data_drive)
            disks.append(VirtualDisk(ControllerType.SCSI, 0, 1, "", instance_id=data_drive))
        if spec.passthrough:
            disks.append(_passthrough_disk(spec))
        folder = make_vm_folder(directory, _vm_model(spec, tuple(disks)), files, guest=spec.guest, writable=writable)
        if spec.guest == "agent":
            _install_agent(folder.guest_dir)
        if spec.guest != "none":  # what `hvbackup-guest check --publish` leaves for the host
            kvp.publish(kvp_dir(folder), kvpreport.READINESS, readiness(_guest_facts(spec)))


def _vm_model(spec: SampleVm, disks: tuple[VirtualDisk, ...]) -> VM:
    rng = random.Random(spec.name)
    nics = tuple(
        NetworkAdapter(
            "Legacy Network Adapter" if legacy else "Network Adapter",
            "00155D" + "".join(f"{rng.randrange(256):02X}" for _ in range(3)),
            dynamic,
            legacy,
            "LAN",
        )
        for legacy, dynamic in spec.nics
    )
    status = IntegrationServiceStatus.NoContact if spec.guest == "none" else IntegrationServiceStatus.Ok
    return VM(
        id=spec.id,
        name=spec.name,
        state=VMState.Off,
        generation=spec.generation,
        version="10.0" if spec.generation == 2 else "9.0",
        is_clustered=spec.clustered,
        checkpoint_type=CheckpointType.Production,
        processor_count=2,
        memory=Memory(startup_bytes=2 << 30),
        firmware=Firmware(True, *SECURE_BOOT_LINUX) if spec.generation == 2 else None,
        integration_services=services(DEFAULT_ENABLED, status),
        network_adapters=nics,
        disks=disks,
        guest={}
        if spec.guest == "none"
        else {
            "OSName": "Linux",
            "OSDistributionName": "Debian GNU/Linux",
            "OSVersion": "6.1.0-28-amd64",
            "FullyQualifiedDomainName": spec.name,
        },
    )


def _passthrough_disk(spec: SampleVm) -> VirtualDisk:
    return VirtualDisk(
        ControllerType.SCSI,
        0,
        2,
        "Disk 2 20.00 GB Bus 0 Lun 2 Target 0",
        passthrough_disk_number=2,
        instance_id=drive_instance_id(spec.id, spec.id, int(ControllerType.SCSI), 0, 2),
    )


# -- guest contents --------------------------------------------------------------------------
def _fstab(spec: SampleVm) -> str:
    lines = [
        f"# /etc/fstab of {spec.name}: static file system information (made by the installer)",
        f"UUID={spec.uid('root')} / ext4 errors=remount-ro 0 1",
        f"UUID={spec.uid('esp')[:4].upper()}-{spec.uid('esp')[4:8].upper()} /boot/efi vfat umask=0077 0 1",
    ]
    if spec.data_disk:
        lines.append(f"UUID={spec.uid('data')} /srv/data xfs noatime,nofail 0 2")
    if spec.passthrough:
        lines.append("UUID=8d1e0f34-5a6b-4c7d-9e8f-0a1b2c3d4e5f /srv/archive ext4 nofail 0 2")
    return "\n".join(lines) + "\n"


OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def _syslog(name: str) -> bytes:
    return b"".join(f"Jan  1 00:00:{i % 60:02d} {name} app[812]: request {i} served\n".encode() for i in range(2000))


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    stamp = int(images.FAKE_TIME)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (stamp, stamp))
            os.chmod(os.path.join(dirpath, name), 0o755 if name in dirnames else 0o644)


def _os_disk(work: Path, spec: SampleVm, vhdx: Path, drive: str) -> list[WritableFile]:
    rng = random.Random(f"{spec.name}:os")
    tree = work / "root-tree"
    _tree(tree, {
        "/etc/hostname": f"{spec.name}\n".encode(),
        "/etc/hosts": f"127.0.0.1 localhost\n127.0.1.1 {spec.name}.lab.example {spec.name}\n".encode(),
        "/etc/fstab": _fstab(spec).encode(),
        "/etc/os-release": OS_RELEASE,
        "/etc/machine-id": (spec.uid("machine").replace("-", "") + "\n").encode(),
        "/home/admin/.profile": b"# ~/.profile\nexport PATH=$HOME/bin:$PATH\n",
        "/home/admin/notes.txt": f"{spec.name}: backed up by hvbackup from the lab host\n".encode(),
        "/var/log/syslog": _syslog(spec.name),
        DATA_FILE: rng.randbytes(DATA_FILE_SIZE),
        app.STATE_FILE: app.encode_state({"seq": 0, "clean": True}),
        "/usr/share/doc/app/README": b"The lab application: records in data.bin, its state in state.\n",
    })  # fmt: skip
    esp = images.Partition("EFI System Partition", images.ESP_TYPE, spec.uid("esp-part"), ESP_SIZE)
    esp.filesystem = images.make_vfat(work / "esp.img", ESP_SIZE, spec.uid("esp")[:8].upper(), "EFI")
    root_size = OS_DISK_SIZE - ESP_SIZE - 2 * images.MiB
    root = images.Partition("root", images.LINUX_FS_TYPE, spec.uid("root-part"), root_size)
    root.filesystem = images.make_ext4(
        work / "root.img", root_size, tree, spec.uid("root"), "root", [DATA_FILE, app.STATE_FILE]
    )
    extents = images.write_vhdx(vhdx, OS_DISK_SIZE, spec.uid("disk-os").upper(), [esp, root])
    for part in (esp, root):
        part.filesystem.image.unlink()  # type: ignore[union-attr]
    return [
        WritableFile(p, drive, size, extents[p])
        for p, size in ((DATA_FILE, DATA_FILE_SIZE), (app.STATE_FILE, app.RECORD_SIZE))
    ]


def _data_disk(work: Path, spec: SampleVm, vhdx: Path, drive: str) -> list[WritableFile]:
    tree = work / "data-tree"
    inside = DB_FILE.removeprefix("/srv/data")
    _tree(
        tree,
        {
            inside: random.Random(f"{spec.name}:db").randbytes(DB_FILE_SIZE),
            "/db/README": b"application database files\n",
        },
    )
    size = DATA_DISK_SIZE - 2 * images.MiB
    part = images.Partition("data", images.LINUX_FS_TYPE, spec.uid("data-part"), size)
    part.filesystem = images.make_xfs(work / "data.img", size, tree, spec.uid("data"), "data", [inside])
    extents = images.write_vhdx(vhdx, DATA_DISK_SIZE, spec.uid("disk-data").upper(), [part])
    part.filesystem.image.unlink()
    return [WritableFile(DB_FILE, drive, DB_FILE_SIZE, extents[inside])]


def _install_agent(guest_dir: Path) -> None:
    """The agent's config and one application hook (app.HOOK_SCRIPT), as an administrator would set them up."""
    (guest_dir / "guest.toml").write_text(
        '[freeze]\nmax_seconds = 60\n\n[hooks]\ntimeout = 30\non_failure = "continue"\n'
    )
    hook = guest_dir / "hooks.d" / "50-app"
    hook.write_text(app.HOOK_SCRIPT)
    hook.chmod(0o755)


def _guest_facts(spec: SampleVm) -> GuestFacts:
    disks = ["sda"] + (["sdb"] if spec.data_disk else []) + (["sdc"] if spec.passthrough else [])
    mounts = [
        "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw",
        "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
        "26 22 8:1 / /boot/efi rw,relatime shared:31 - vfat /dev/sda1 rw,fmask=0077",
        "27 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=400000k",
    ]
    if spec.data_disk:
        mounts.append("28 22 8:17 / /srv/data rw,noatime shared:30 - xfs /dev/sdb1 rw,attr2,inode64,noquota")
    if spec.passthrough:
        mounts.append("29 22 8:33 / /srv/archive rw,relatime shared:40 - ext4 /dev/sdc1 rw")
    nics = ["tulip" if legacy else "hv_netvsc" for legacy, _ in spec.nics]
    return GuestFacts(
        spec.guest != "none", spec.guest, nics, disks, spec.scheduler, _fstab(spec), "\n".join(mounts) + "\n"
    )
