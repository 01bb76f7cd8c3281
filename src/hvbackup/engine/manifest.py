"""The snapshot manifest as typed records: what the engine writes into a snapshot and reads back.

The repository stores and returns a manifest as a plain JSON object (repo/ knows nothing of the
engine); these records are the engine's side of it, converted at the edge with `to_json` and
`read_manifest`. Every record keeps the keys it does not know in `extra` and writes them back, so
the fields of a newer writer survive a read and a rewrite. Every field is described in
docs/FORMAT.md §7.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from hvbackup.hyperv.model import ReferencePoint, VmConfig
from hvbackup.repo import Snapshot
from hvbackup.vocabulary import BackupMode, Consistency

R = TypeVar("R", bound="_Record")

KIND_VM = "vm"
KIND_IMAGE = "image"


class _Record:
    """Known fields by name, every other key in `extra`. `NESTED` names the fields that hold
    records (or tuples of them); `OMITTED_WHEN_NONE` the ones written only when set; `ENUMS`
    the fields read as a vocabulary enum when the value is known (kept as the string otherwise)."""

    NESTED: ClassVar[dict[str, Any]] = {}
    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()
    ENUMS: ClassVar[dict[str, type[StrEnum]]] = {}
    extra: Mapping[str, Any]

    if TYPE_CHECKING:  # every subclass is a dataclass with a generated __init__

        def __init__(self, **fields: Any) -> None: ...

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.name in self.OMITTED_WHEN_NONE):
                continue
            out[f.name] = _encode(value)
        return out | dict(self.extra)

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any]) -> R:
        known = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}  # type: ignore[arg-type]
        kwargs = {name: cls._decode(name, data[name]) for name in known if name in data}
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def _decode(cls, name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in cls.NESTED:
            if not value and isinstance(value, Mapping):
                return None
            record = cls.NESTED[name]
            return tuple(record.from_json(v) for v in value) if isinstance(value, list) else record.from_json(value)
        if name in cls.ENUMS:
            enum = cls.ENUMS[name]
            return enum(value) if value in enum._value2member_map_ else value
        return tuple(value) if isinstance(value, list) else value


def _encode(value: Any) -> Any:
    if isinstance(value, (_Record, ReferencePointEntry)):
        return value.to_json()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


@dataclass(frozen=True)
class DiskEntry(_Record):
    """One backed-up disk: its shape (what a restore rebuilds), how it was read, and its numbers."""

    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"controller", "virtual_disk"})

    name: str
    path: str = ""
    format: str = "raw"
    size: int = 0
    logical_sector_size: int | None = None
    physical_sector_size: int | None = None
    block_size: int | None = None
    is_fixed: bool = False
    is_differencing: bool = False
    chunk_size: int | None = None
    mode: str = "full"  # "full" | "incremental"
    reason: str | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    controller: str | None = None  # VM disks: the controller address, e.g. "SCSI:0:1"
    virtual_disk: Mapping[str, Any] | None = None  # VM disks: hyperv.model.VirtualDisk.to_json()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GuestFreezeReport(_Record):
    """What the guest agent (or the lab's stock daemon) reported about the freeze of a checkpoint;
    the keys every writer sends are fields, the agent's others stay in `extra`."""

    ENUMS: ClassVar[dict[str, type[StrEnum]]] = {"consistency": Consistency}

    backup_id: str | None = None
    by: str | None = None
    consistency: Consistency | str | None = None  # "application" | "filesystem" | "failed"
    frozen_seconds: float | None = None
    error: str | None = None
    watchdog_fired: bool = False
    frozen: tuple[str, ...] = ()
    hooks: tuple[Mapping[str, Any], ...] = ()
    quiescers: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferencePointEntry:
    """The reference point the snapshot's checkpoint became (an incremental's base), as the
    Hyper-V model reads it, plus the keys that model does not know."""

    point: ReferencePoint
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.point.to_json() | dict(self.extra)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferencePointEntry:
        known = {f.name for f in dataclasses.fields(ReferencePoint)}
        return cls(ReferencePoint.from_json(dict(data)), {k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class VmEntry(_Record):
    """The VM as it was backed up; `config` is hyperv.model.VmConfig.to_json()."""

    id: str
    name: str
    state: str = ""  # the VMState name at planning time
    config: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def vm_config(self) -> VmConfig:
        return VmConfig.from_json(dict(self.config))


@dataclass(frozen=True)
class CheckpointEntry(_Record):
    """The recovery checkpoint the disks were read from (gone once it became the reference point)."""

    id: str | None = None
    name: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


CONFIG_KINDS = ("vmcx", "vmgs", "vmrs")


@dataclass(frozen=True)
class ConfigFileEntry(_Record):
    """One configuration file of the checkpoint (.vmcx, .vmgs, .vmrs): where it was on the host and
    which entry of `disks` holds its bytes (a raw image named `config.KIND`, no controller)."""

    kind: str
    path: str = ""
    size: int = 0
    disk: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VmManifest(_Record):
    """A whole VM's snapshot (`hvbackup backup`)."""

    NESTED: ClassVar[dict[str, Any]] = {
        "vm": VmEntry,
        "guest_report": GuestFreezeReport,
        "checkpoint": CheckpointEntry,
        "reference_point": ReferencePointEntry,
        "disks": DiskEntry,
        "config_files": ConfigFileEntry,
    }
    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"config_files"})
    ENUMS: ClassVar[dict[str, type[StrEnum]]] = {"mode": BackupMode, "consistency": Consistency}

    source: str
    vm: VmEntry
    kind: str = KIND_VM
    mode: BackupMode | str = BackupMode.none
    consistency: Consistency | str = Consistency.none
    guest_report: GuestFreezeReport | None = None
    predicted: Mapping[str, Any] = field(default_factory=dict)  # assess.verdict.Verdict.to_json()
    frozen_or_unavailable_s: float = 0.0
    checkpoint: CheckpointEntry = field(default_factory=CheckpointEntry)
    reference_point: ReferencePointEntry | None = None
    warnings: tuple[str, ...] = ()
    disks: tuple[DiskEntry, ...] = ()
    config_files: tuple[ConfigFileEntry, ...] | None = None  # the captured ones; absent: none captured
    extra: Mapping[str, Any] = field(default_factory=dict)

    def disk_named(self, name: str) -> DiskEntry | None:
        return next((d for d in self.disks if d.name == name), None)

    def config_file(self, kind: str) -> ConfigFileEntry | None:
        return next((c for c in self.config_files or () if c.kind == kind), None)


@dataclass(frozen=True)
class ImageManifest(_Record):
    """One image file's or block device's snapshot (`hvbackup image backup`)."""

    NESTED: ClassVar[dict[str, Any]] = {"disks": DiskEntry}
    ENUMS: ClassVar[dict[str, type[StrEnum]]] = {"consistency": Consistency}

    source: str
    kind: str = KIND_IMAGE
    parent: str | None = None  # the snapshot id the backup was incremental against
    consistency: Consistency | str = Consistency.crash
    consistency_note: str = ""
    started: str = ""  # UTC ISO 8601
    duration_s: float = 0.0
    disks: tuple[DiskEntry, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


Manifest = VmManifest | ImageManifest


def read_manifest(data: Mapping[str, Any]) -> Manifest:
    """The record for a manifest as the repository returns it; a manifest with a `vm` object is a
    VM's (whatever its `kind`), any other an image's."""
    if data.get("kind") == KIND_VM or isinstance(data.get("vm"), Mapping):
        return VmManifest.from_json(data)
    return ImageManifest.from_json(data)


def manifest_of(snapshot: Snapshot) -> Manifest:
    return read_manifest(snapshot.manifest)
