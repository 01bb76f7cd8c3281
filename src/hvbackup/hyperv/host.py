"""The operations a backup and a restore ask of a Hyper-V host, as one interface.

Two kinds of host implement it: `PowerShellHost` (a real Hyper-V host, through PowerShell
over PSRP or locally) and the lab host (a folder with real VHDX/AVHDX files). The semantics
each method must keep are written on the method; the call order of a backup is in
docs/HYPERV.md.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hvbackup.errors import UsageError
from hvbackup.hyperv.enums import ConsistencyLevel, VMState
from hvbackup.hyperv.errors import OperationTimeout, VmNotFound
from hvbackup.hyperv.model import (
    CHECKPOINT_PREFIX,
    VM,
    Checkpoint,
    Host,
    Orphan,
    ReferencePoint,
    VirtualDisk,
    VmConfig,
)


class ByteSource(Protocol):
    """Random-access bytes of one file; the disk layer's protocol, duck-typed here."""

    name: str
    size: int

    def pread(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConfigFile:
    """One configuration file of a checkpoint: `kind` is its extension ("vmcx", "vmgs", "vmrs")."""

    kind: str
    path: str
    size: int = 0


class DiskWriter(Protocol):
    """Writes whole files into a host's folders, named by host path (D:\\VMs\\x, \\\\server\\share\\x, or
    a local path on the host this process runs on). A file is written under a temporary name and
    renamed when complete; a failed write removes what it wrote and never replaces a file."""

    def exists(self, path: str) -> bool: ...

    def make_folder(self, path: str) -> None:
        """Create `path` and its parents (no error if it exists)."""

    def local_folder(self, path: str) -> Path | None:
        """`path` as a folder of this machine, when a restore can write straight into it; else None."""

    def upload(self, local: Path, path: str) -> None:
        """Copy the finished local file `local` to `path`; refused (FileExistsError) if `path` exists."""

    def remove(self, path: str) -> None:
        """Remove a file written earlier; no error if it is gone."""

    def remove_folder(self, path: str) -> None:
        """Remove a folder made earlier if it is empty; no error if it is gone or not empty."""


class HyperVHost(ABC):
    """One Hyper-V host. Methods raise `hvbackup.hyperv.errors.HyperVError` subclasses.

    Besides the operations every host has, a host may offer these capabilities; each says
    "not offered by this host" with None (the defaults here), and the engine then does without:
    `disk_writer` (writing restored disks onto the host), `list_switches` (switch names checked
    before a restore), `checkpoint_files` (the configuration files of a checkpoint),
    `guest_readiness` (assessment input) and `guest_report` (application consistency)."""

    disk_writer: DiskWriter | None = None
    """Writes files into the host's folders, by host path (what `create_vm` is then given): over
    SMB for a remote host (hyperv/smb_writer.py), local files for the host this process runs on
    and for the lab. A whole-VM restore writes its disks through it before `create_vm` takes them.
    None: not offered (whole-VM restore refused)."""

    def restore_folder(self, name: str) -> str:
        """The host folder a restored VM named `name` gets when the administrator names none and its
        original folder is not free: `<VirtualHardDiskPath>\\<name>` (Get-VMHost, docs/HYPERV.md §14)."""
        info = self.host_info()
        base = info.vhd_path or info.vm_path
        if not base:
            raise UsageError(f"host {info.name} names no default folder for virtual disks: give --destination")
        return join_host_path(base, name)

    def list_switches(self) -> list[str] | None:
        """The names of the host's virtual switches (Get-VMSwitch), which a restored VM's network
        adapters may connect to. None: not offered by this host (the names are then not checked)."""
        return None

    def checkpoint_files(self, checkpoint: Checkpoint) -> list[ConfigFile] | None:
        """The configuration files of a checkpoint (.vmcx, .vmgs, and .vmrs for a saved VM) as host
        paths that `open_disk_source` reads. None: not offered by this host (a backup then records
        that none were captured)."""
        return None

    def import_vm(self, vmcx_path: str, folder: str, name: str, config: VmConfig, disk_paths: Sequence[str]) -> VM:
        """Import a copy of a VM from its configuration file with a new id (Compare-VM, then Import-VM
        -Copy -GenerateNewId), its files under `folder`, named `name`, its drives at `config.disks`'
        addresses pointed at `disk_paths`, its adapters on `config`'s switches with a new MAC where
        `config` asks for one; left Off. Raises UsageError when this host does not offer it."""
        raise UsageError(f"host {self.host_info().name} cannot import a VM from its configuration files")

    @abstractmethod
    def host_info(self) -> Host:
        """Facts about the host itself: name, OS build, supported VM configuration versions."""

    def identity(self) -> str:
        """What tells this host apart from every other host this machine talks to (the key of the
        engine's journal and VM backup locks): its name, unless the host knows better."""
        return self.host_info().name

    @abstractmethod
    def inventory(self) -> list[VM]:
        """Every VM on the host with its disks, NICs, integration services and checkpoints."""

    def get_vm(self, vm: str) -> VM:
        """One VM by id (GUID) or by name; VmNotFound if none, or if a name is ambiguous."""
        vms = self.inventory()
        by_id = [v for v in vms if v.id.lower() == vm.lower()]
        if by_id:
            return by_id[0]
        by_name = [v for v in vms if v.name == vm]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise VmNotFound(f"{len(by_name)} VMs are named {vm!r}: give the VM id instead")
        raise VmNotFound(f"no VM {vm!r} on {self.host_info().name}")

    @abstractmethod
    def create_recovery_checkpoint(
        self,
        vm: VM,
        consistency: ConsistencyLevel,
        name: str,
        *,
        skip_unsupported_disks: bool = False,
        on_created: Callable[[Checkpoint], None] | None = None,
    ) -> Checkpoint:
        """Take a recovery checkpoint (SnapshotType 32768) asking for `consistency`.

        `on_created` is called with the checkpoint as soon as it exists, before it is given
        `name`, so the caller can remember it as its own; a name the host cannot give is a
        warning (`take_warnings`), and the checkpoint is returned with the name it has.

        After it returns, the checkpoint's disks are frozen (read-only parents) and the VM
        writes to new differencing disks. `name` should start with CHECKPOINT_PREFIX.
        Pass-through and other disks that cannot be checkpointed make it fail unless
        `skip_unsupported_disks` (IgnoreNonSnapshottableDisks) is set.
        When the guest cannot freeze, the host does what Hyper-V does for the VM's checkpoint
        type: ProductionOnly fails with WmiJobError; Production (and Standard) fall back to a
        crash-consistent checkpoint. Either way nothing is assumed: the caller reads the level
        achieved back from the reference point, and may retry a failure with CrashConsistent.
        """

    @abstractmethod
    def checkpoint_disks(self, checkpoint: Checkpoint) -> list[VirtualDisk]:
        """The checkpoint's virtual disks; each `path` is the frozen file to read."""

    @abstractmethod
    def changed_ranges(self, disk_path: str, rct_id: str) -> Iterator[tuple[int, int]]:
        """(offset, length) byte ranges of the virtual disk changed since `rct_id`.

        GetVirtualDiskChanges semantics: the whole disk [0, size) is covered by repeated
        queries, each advancing by the length the host says it processed. Raises
        ChangeTrackingUnavailable when the host cannot answer for this id (the caller reads
        the disk fully).
        """

    @abstractmethod
    def convert_to_reference_point(self, checkpoint: Checkpoint) -> ReferencePoint:
        """Turn a recovery checkpoint into a reference point; the checkpoint is gone afterwards
        (its differencing disks are merged back). The consistency level is read back from the
        host, never assumed."""

    @abstractmethod
    def list_reference_points(self, vm: VM) -> list[ReferencePoint]:
        """The VM's reference points (to confirm that an incremental's base still exists)."""

    @abstractmethod
    def destroy_reference_point(self, reference_point: ReferencePoint) -> None:
        """Delete a reference point; ObjectNotFound if it does not exist."""

    @abstractmethod
    def destroy_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Delete a checkpoint without keeping a reference point (its disks are merged)."""

    @abstractmethod
    def save_vm(self, vm: VM) -> None:
        """Save the VM's memory state (like hibernating); returns when it is Saved."""

    @abstractmethod
    def start_vm(self, vm: VM) -> None:
        """Start (or resume from saved) the VM; returns when it is Running."""

    @abstractmethod
    def stop_vm(self, vm: VM) -> None:
        """Turn the VM off at once, like pulling the plug; returns when it is Off."""

    @abstractmethod
    def request_shutdown(self, vm: VM, reason: str) -> None:
        """Ask the guest to shut down through the Shutdown integration service; returns at once."""

    def shutdown_vm(
        self, vm: VM, timeout: float = 300.0, reason: str = "hvbackup: offline backup", interval: float = 2.0
    ) -> None:
        """Shut the guest down cleanly and wait until the VM is Off (OperationTimeout after `timeout`)."""
        self.request_shutdown(vm, reason)
        self.wait_for_state(vm, VMState.Off, timeout, interval)

    def wait_for_state(self, vm: VM, state: VMState, timeout: float, interval: float = 2.0) -> VM:
        deadline = time.monotonic() + timeout
        while True:
            current = self.get_vm(vm.id)
            if current.state == state:
                return current
            if time.monotonic() >= deadline:
                raise OperationTimeout(f"VM {vm.name} is {current.state.name}, not {state.name}, after {timeout:.0f} s")
            time.sleep(interval)

    @abstractmethod
    def list_orphans(self, vm: VM) -> list[Orphan]:
        """Recovery checkpoints, checkpoints named with CHECKPOINT_PREFIX, and AVHDX files in the
        VM's disk folders that no disk chain uses: what an earlier, interrupted run may have left."""

    @abstractmethod
    def create_vm(self, config: VmConfig, name: str, disk_paths: Sequence[str]) -> VM:
        """Build a new VM (new id) from a saved configuration, attaching `disk_paths` in the
        order of `config.disks` at their recorded controller addresses; it is left Off."""

    @abstractmethod
    def open_disk_source(self, path: str) -> ByteSource:
        """Open a (frozen) disk file of this host for reading while Hyper-V holds it open."""

    def guest_readiness(self, vm_name: str) -> dict[str, Any] | None:
        """What the guest agent's readiness check (`hvbackup-guest check --json`) says inside the VM,
        as assess.guest_report.GuestReport reads it (PowerShellHost: from the guest's Data Exchange
        items, docs/HYPERV.md §13). None: not offered by this host, or no intact report for this VM;
        the verdict then assumes the stock VSS daemon."""
        return None

    def guest_report(self, checkpoint_id: str) -> dict[str, Any] | None:
        """What the guest agent reported about its freeze for this checkpoint (its `consistency`
        says whether hooks and quiescers ran). None: not offered by this host, or no complete report
        tied to this checkpoint (a torn or stale one never counts, docs/HYPERV.md §13); the engine
        then records a frozen checkpoint as filesystem-consistent."""
        return None

    def take_warnings(self) -> list[str]:
        """What the host warned about during this thread's calls since the last take (a WMI job
        that completed with warnings, a checkpoint left unnamed); each is said once."""
        return []

    def close(self) -> None:
        """Release connections; the host object is unusable afterwards."""

    def __enter__(self) -> HyperVHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checkpoint_name(stamp: str) -> str:
    """The name this tool gives its checkpoints, e.g. 'hvbackup-20260101T120000Z'."""
    return f"{CHECKPOINT_PREFIX}{stamp}"


_WINDOWS_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\|//)")


def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS_PATH.match(path)) or ("\\" in path and "/" not in path)


def join_host_path(folder: str, name: str) -> str:
    """`folder`/`name` in the host's own path style: backslashes for Windows paths, else slashes."""
    separator = "\\" if is_windows_path(folder) else "/"
    return folder.rstrip("\\/") + separator + name


def host_path_folder(path: str) -> str:
    """The folder part of a host path, in either style."""
    cut = max(path.rfind("\\"), path.rfind("/"))
    return path[:cut] if cut > 0 else path
