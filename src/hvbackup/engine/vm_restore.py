"""`hvbackup restore`: a whole VM as a new VM on a host, or one disk to a file.

A whole-VM restore first checks everything it can (name, MACs, the configuration version the
host can create, the virtual switches, free file names), then writes each disk as a dynamic VHDX
of the original geometry into a folder of the host (the one given, the VM's original folder when
it is free, or the host's default folder): straight into it when the folder is local (the host
itself, the lab), else into a local temporary file uploaded whole (over SMB) under a temporary
name. Then the host builds a new VM (new id) from the recorded configuration with those disks at
their recorded controller addresses (docs/HYPERV.md §14). MAC addresses are
regenerated unless kept on purpose (a clone with the same MAC on the same network breaks both).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hvbackup.engine.disk_restore import RestoreResult, restore_disk
from hvbackup.engine.manifest import CONFIG_KINDS, DiskEntry, VmManifest, manifest_of
from hvbackup.errors import HvBackupError, UsageError
from hvbackup.hyperv.host import DiskWriter, HyperVHost, host_path_folder, is_windows_path, join_host_path
from hvbackup.hyperv.model import VM, Firmware, Host, VmConfig, vm_name_problem
from hvbackup.progress import Progress
from hvbackup.repo import Repository, Snapshot


@dataclass
class VmRestoreResult:
    vm_id: str
    name: str
    started: bool
    disks: list[RestoreResult]
    duration_s: float
    folder: str = ""

    def to_json(self) -> dict:
        return {
            "vm_id": self.vm_id,
            "name": self.name,
            "started": self.started,
            "disks": [d.to_json() for d in self.disks],
            "duration_s": round(self.duration_s, 3),
            "folder": self.folder,
        }


SECURE_BOOT_TEMPLATE = "MicrosoftUEFICertificateAuthority"  # what Linux shims are signed by, docs/HYPERV.md §14


def configuration_version(recorded: str, host: Host) -> str:
    """The version the new VM gets: the host's default when it is at least the recorded one, else the
    lowest supported version >= the recorded one (a VM cannot be created at a lower version than it
    had). Refused when the host supports none (docs/HYPERV.md §14)."""
    supported = sorted(host.supported_versions, key=_version_key)
    if not supported:
        return host.default_version or recorded
    wanted = _version_key(recorded or "0")
    if host.default_version and _version_key(host.default_version) >= wanted:
        return host.default_version
    fitting = [v for v in supported if _version_key(v) >= wanted]
    if not fitting:
        raise UsageError(
            f"host {host.name} supports VM configuration versions {', '.join(supported)}; "
            f"the VM had {recorded}, which none of them can hold: restore onto a newer host, "
            f"or restore the disks with --disk N --to FILE"
        )
    return fitting[0]


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def with_host_settings(config: VmConfig, version: str, switch: str | None) -> VmConfig:
    """The configuration as the new host builds it: its version, the Linux Secure Boot template (or
    Secure Boot off as recorded) and, with --switch, every adapter on that switch."""
    firmware = config.firmware
    if config.generation == 2:
        secure = firmware.secure_boot if firmware is not None else True
        firmware = Firmware(secure, SECURE_BOOT_TEMPLATE if secure else None)
    nics = config.network_adapters
    if switch is not None:
        nics = tuple(dataclasses.replace(n, switch_name=switch) for n in nics)
    return dataclasses.replace(config, version=version, firmware=firmware, network_adapters=nics)


def check_switches(config: VmConfig, switches: list[str] | None, host_name: str) -> None:
    """Every adapter's switch exists on the host (Hyper-V compares switch names without case)."""
    if switches is None:
        return
    known = {s.lower() for s in switches}
    missing = sorted(
        {n.switch_name for n in config.network_adapters if n.switch_name and n.switch_name.lower() not in known}
    )
    if missing:
        have = ", ".join(sorted(switches)) or "none"
        raise UsageError(
            f"host {host_name} has no virtual switch {', '.join(repr(m) for m in missing)} (it has: {have}): "
            f"connect the adapters to one with --switch NAME"
        )


def restored_config(snapshot: Snapshot, name: str, keep_macs: bool) -> VmConfig:
    manifest = manifest_of(snapshot)
    if not isinstance(manifest, VmManifest):
        raise UsageError(
            f"snapshot {snapshot.info.short_id} is an image backup, not a VM: use `hvbackup image restore`"
        )
    config = manifest.vm.vm_config()
    if keep_macs:
        nics = tuple(dataclasses.replace(n, dynamic_mac=False) if n.mac_address else n for n in config.network_adapters)
    else:
        nics = tuple(dataclasses.replace(n, mac_address="", dynamic_mac=True) for n in config.network_adapters)
    return dataclasses.replace(config, name=name, network_adapters=nics)


def new_vm_name(snapshot: Snapshot, requested: str | None, existing: list[VM]) -> str:
    """The name the restored VM gets: `requested`, refused if a VM has it, or the first free
    `<name>-restored-<short id>`, `…-2`, `…-3`."""
    taken = {vm.name.lower() for vm in existing}  # Hyper-V compares VM names without case
    if requested is not None:
        problem = vm_name_problem(requested)
        if problem is not None:
            raise UsageError(problem)
        if requested.lower() in taken:
            raise UsageError(f"a VM named {requested!r} already exists on this host: choose another --name")
        return requested
    manifest = manifest_of(snapshot)
    original = manifest.vm.name if isinstance(manifest, VmManifest) else "vm"
    base = f"{original}-restored-{snapshot.info.short_id}"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}-{n}"
    problem = vm_name_problem(name)
    if problem is not None:
        raise UsageError(f"{problem}: choose a name with --name")
    return name


def check_macs_free(config: VmConfig, existing: list[VM]) -> None:
    """--keep-macs only when no VM on the host uses one of the addresses (two NICs with one MAC on
    one network break both)."""
    for nic in config.network_adapters:
        if not nic.mac_address:
            continue
        for vm in existing:
            if any(_same_mac(nic.mac_address, other.mac_address) for other in vm.network_adapters):
                raise UsageError(
                    f"--keep-macs: MAC {nic.mac_address} is in use by VM {vm.name} ({vm.state.name}); "
                    f"remove that VM first or restore without --keep-macs"
                )


def _same_mac(a: str, b: str) -> bool:
    def plain(mac: str) -> str:
        return mac.replace("-", "").replace(":", "").upper()

    return bool(a and b) and plain(a) == plain(b)


@dataclass(frozen=True)
class _Item:
    """One file a restore writes: the snapshot's disk entry holding it, its file name, its format."""

    disk_name: str
    file_name: str
    fmt: str


@dataclass
class _Placement:
    """Where each restored file goes: its host path, and the local file written first."""

    folder: str
    host_paths: list[str]
    local_paths: list[Path]
    staging: Path | None  # a local temporary folder, when the host folder is not local
    made_folder: bool  # the restore created the host folder (removed again if the restore fails)


def restore_vm(
    host: HyperVHost,
    repo: Repository,
    snapshot: Snapshot,
    *,
    name: str | None = None,
    keep_macs: bool = False,
    start: bool = True,
    allow_damaged: bool = False,
    destination: str | None = None,
    switch: str | None = None,
    import_config: bool = False,
    progress: Progress | None = None,
) -> VmRestoreResult:
    """Restore `snapshot` as a new VM; every clash (name, MAC, switch, configuration version, an
    existing file, an image snapshot) is refused before any disk is written. `import_config`:
    build it with Import-VM from the captured configuration files instead of from the recorded
    configuration (docs/HYPERV.md §14)."""
    started = time.monotonic()
    writer = host.disk_writer
    if writer is None:
        raise UsageError(
            "this host offers no way to write restored disks onto it: restore the disks with "
            "--disk N --to FILE and attach them with New-VM / Add-VMHardDiskDrive"
        )
    existing = host.inventory()
    info = host.host_info()
    name = new_vm_name(snapshot, name, existing)
    config = restored_config(snapshot, name, keep_macs)
    if keep_macs:
        check_macs_free(config, existing)
    if import_config:
        check_importable(snapshot, config, info)
        config = with_host_settings(config, config.version, switch)
    else:
        config = with_host_settings(config, configuration_version(config.version, info), switch)
    check_switches(config, host.list_switches(), info.name)
    disks = _disk_entries(snapshot, config)
    items = [_Item(d.name, n, "vhdx") for d, n in zip(disks, _file_names(disks), strict=True)]
    if import_config:
        items += _config_items(snapshot)
    placement = _place(host, writer, snapshot, existing, name, items, destination)
    results: list[RestoreResult] = []
    written: list[str] = []
    try:
        for item, local, host_path in zip(items, placement.local_paths, placement.host_paths, strict=True):
            result = restore_disk(
                repo,
                snapshot,
                local,
                disk_name=item.disk_name,
                fmt=item.fmt,
                allow_damaged=allow_damaged,
                progress=progress,
            )
            if item.fmt == "vhdx":
                results.append(result)
            written.append(host_path)
            if placement.staging is not None:
                writer.upload(local, host_path)
                local.unlink()
        disk_paths = placement.host_paths[: len(disks)]
        if import_config:
            vmcx = placement.host_paths[len(disks)]
            vm = host.import_vm(vmcx, placement.folder, name, config, disk_paths)
        else:
            vm = host.create_vm(config, name, disk_paths)
    except BaseException:
        for path in written:
            _remove_quietly(writer, path)
        if placement.made_folder:
            _remove_quietly(writer, placement.folder, folder=True)
        raise
    finally:
        if placement.staging is not None:
            shutil.rmtree(placement.staging, ignore_errors=True)
    if start:
        host.start_vm(vm)
    return VmRestoreResult(vm.id, vm.name, start, results, time.monotonic() - started, placement.folder)


def check_importable(snapshot: Snapshot, config: VmConfig, host: Host) -> None:
    """--import-config needs the captured .vmcx, and a host that runs the VM's configuration version
    (Import-VM keeps it)."""
    manifest = manifest_of(snapshot)
    if not isinstance(manifest, VmManifest) or manifest.config_file("vmcx") is None:
        raise UsageError(
            f"snapshot {snapshot.info.short_id} holds no configuration file (.vmcx): restore without --import-config"
        )
    if host.supported_versions and config.version not in host.supported_versions:
        raise UsageError(
            f"host {host.name} does not run configuration version {config.version} "
            f"(it supports {', '.join(host.supported_versions)}): restore without --import-config"
        )


def _config_items(snapshot: Snapshot) -> list[_Item]:
    """The captured configuration files, .vmcx first, under their recorded file names."""
    manifest = manifest_of(snapshot)
    assert isinstance(manifest, VmManifest)
    ordered = sorted(
        manifest.config_files or (), key=lambda c: CONFIG_KINDS.index(c.kind) if c.kind in CONFIG_KINDS else 9
    )
    return [_Item(c.disk, _base_name(c.path) or f"{c.disk}", "raw") for c in ordered]


def _base_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._ -]", "_", re.split(r"[\\/]", path)[-1])


def _remove_quietly(writer: DiskWriter, path: str, *, folder: bool = False) -> None:
    try:
        if folder:
            writer.remove_folder(path)
        else:
            writer.remove(path)
    except Exception:  # the failure being raised says more than a failed cleanup
        pass


def _place(
    host: HyperVHost,
    writer: DiskWriter,
    snapshot: Snapshot,
    existing: list[VM],
    name: str,
    items: list[_Item],
    destination: str | None,
) -> _Placement:
    """The host folder (the one given, else the VM's original folder when free, else the host's
    default folder for this name) and a host path per file; refused if a file of that name exists."""
    names = [item.file_name for item in items]
    folder = destination or _free_original_folder(writer, snapshot, existing, names) or host.restore_folder(name)
    host_paths = [join_host_path(folder, n) for n in names]
    taken = [p for p in host_paths if writer.exists(p)]
    if taken:
        raise UsageError(f"{', '.join(taken)} exists on the host: give another --destination")
    made_folder = not writer.exists(folder)
    writer.make_folder(folder)
    local = writer.local_folder(folder)
    staging = None
    if local is None:
        staging = Path(tempfile.mkdtemp(prefix="hvbackup-restore-"))
        local = staging
    return _Placement(folder, host_paths, [local / n for n in names], staging, made_folder)


def _file_names(disks: list[DiskEntry]) -> list[str]:
    """Each disk's file name: its recorded file's stem as a .vhdx, made unique."""
    names: list[str] = []
    for entry in disks:
        stem = re.split(r"[\\/]", entry.path)[-1].rsplit(".", 1)[0] if entry.path else entry.name
        stem = re.sub(r"[^A-Za-z0-9._ -]", "_", stem) or entry.name
        candidate, n = f"{stem}.vhdx", 1
        while candidate.lower() in {x.lower() for x in names}:
            n += 1
            candidate = f"{stem}-{n}.vhdx"
        names.append(candidate)
    return names


def _free_original_folder(writer: DiskWriter, snapshot: Snapshot, existing: list[VM], names: list[str]) -> str | None:
    """The folder the VM's first disk was in, when the VM is gone from this host and none of the
    restored file names is taken there (restoring a lost VM in place)."""
    manifest = manifest_of(snapshot)
    if not isinstance(manifest, VmManifest) or not manifest.disks or not manifest.disks[0].path:
        return None
    if any(vm.id.lower() == manifest.vm.id.lower() for vm in existing):
        return None
    folder = host_path_folder(manifest.disks[0].path)
    if not is_windows_path(folder) and writer.local_folder(folder) is None:
        return None
    try:
        if not writer.exists(folder) or any(writer.exists(join_host_path(folder, n)) for n in names):
            return None
    except HvBackupError:
        return None
    return folder


def _disk_entries(snapshot: Snapshot, config: VmConfig) -> list[DiskEntry]:
    """The manifest's disk entry for each disk of the configuration, in its order."""
    by_address = {d.controller: d for d in manifest_of(snapshot).disks}
    missing = [disk.address for disk in config.disks if disk.address not in by_address]
    if missing:
        raise UsageError(f"snapshot {snapshot.info.short_id} has no data for disk {', '.join(missing)}")
    return [by_address[disk.address] for disk in config.disks]
