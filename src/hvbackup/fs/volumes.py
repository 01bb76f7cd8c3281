"""Find the filesystems on a snapshot disk: a whole-disk filesystem, GPT/MBR partitions, LVM2.

Every volume gets a name a user can pass to --volume: `disk` for a filesystem or PV on the
whole disk, `p1`, `p2`... for partitions, `VG/LV` for logical volumes. Partitions and LVs are
recognised by their first bytes, not by their partition type, so a mislabelled partition is
still found. LUKS and unknown contents are listed too, so that choosing them fails clearly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from hvbackup.fs.errors import EncryptedVolume, UnknownFilesystem, VolumeChoice
from hvbackup.fs.lvm import open_logical_volume

FILESYSTEMS = ("ext4", "xfs", "btrfs")
_EXTENDED_MBR_TYPES = {0x05, 0x0F, 0x85}
_SKIPPED_LV_TYPES = {"thin-pool", "cache-pool", "vdo-pool"}


@dataclass
class Volume:
    name: str
    kind: str  # ext4 | xfs | btrfs | luks | lvm-pv | swap | unknown
    size: int
    open: Callable[[], BinaryIO]
    note: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "size": self.size, "note": self.note}

    @property
    def is_filesystem(self) -> bool:
        return self.kind in FILESYSTEMS


def probe(fh: BinaryIO) -> str:
    """What the first bytes of a volume say it holds."""
    head = _read_at(fh, 0, 4096)
    if head[:6] == b"LUKS\xba\xbe" or head[:6] == b"SKUL\xba\xbe":
        return "luks"
    if head[:4] == b"XFSB":
        return "xfs"
    if _read_at(fh, 0x438, 2) == b"\x53\xef":
        return "ext4"
    if _read_at(fh, 0x10040, 8) == b"_BHRfS_M":
        return "btrfs"
    if any(head[s * 512 : s * 512 + 8] == b"LABELONE" for s in range(4)):
        return "lvm-pv"
    if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return "swap"
    return "unknown"


def _read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def find_volumes(disk: BinaryIO, sector_size: int = 512) -> list[Volume]:
    """Every volume on the disk, partitions and logical volumes included, in disk order."""
    kind = probe(disk)
    size = _stream_size(disk)
    if kind != "unknown":
        whole = Volume("disk", kind, size, lambda: disk)
        return _expand_lvm([whole])
    partitions = _partitions(disk, sector_size)
    if not partitions:
        return [Volume("disk", "unknown", size, lambda: disk, "no partition table and no filesystem")]
    return _expand_lvm(partitions)


def _stream_size(fh: BinaryIO) -> int:
    size = getattr(fh, "size", None)
    if size is None:
        size = fh.seek(0, 2)
    return size


def _partitions(disk: BinaryIO, sector_size: int) -> list[Volume]:
    from dissect.volume.disk import Disk

    try:
        disk.seek(0)
        table = Disk(disk, sector_size=sector_size)
    except Exception:  # dissect raises several kinds on garbage
        return []
    volumes = []
    for part in table.partitions:
        if isinstance(part.type, int) and part.type in _EXTENDED_MBR_TYPES:
            continue
        if part.size == 0:
            continue
        stream = part.open()
        volumes.append(Volume(f"p{part.number}", probe(stream), part.size, _const(stream), part.type_name or ""))
    return volumes


def _const(stream: BinaryIO) -> Callable[[], BinaryIO]:
    return lambda: stream


def _no_stream() -> BinaryIO:
    raise UnknownFilesystem("this volume cannot be read in-process")


def _expand_lvm(volumes: list[Volume]) -> list[Volume]:
    """The volumes, then the logical volumes of the volume groups their LVM physical volumes make up."""
    pvs = [v for v in volumes if v.kind == "lvm-pv"]
    if not pvs:
        return volumes
    out = list(volumes)
    for vg_name, members in _group_by_vg(pvs).items():
        out.extend(_logical_volumes(vg_name, members))
    return out


def _group_by_vg(pvs: list[Volume]) -> dict[str, list[Volume]]:
    from dissect.volume.lvm.physical import LVM2Device

    groups: dict[str, list[Volume]] = {}
    for pv in pvs:
        try:
            meta = LVM2Device(pv.open()).metadata or {}
        except Exception as exc:  # a damaged label: list the PV with the reason
            pv.note = f"unreadable LVM label: {exc}"
            continue
        names = [k for k, v in meta.items() if isinstance(v, dict)]
        if names:
            pv.note = f"LVM physical volume of {names[0]}"
            groups.setdefault(names[0], []).append(pv)
    return groups


def _logical_volumes(vg_name: str, members: list[Volume]) -> list[Volume]:
    from dissect.volume.lvm import LVM2

    try:
        vg = LVM2([m.open() for m in members]).vg
    except Exception as exc:  # shown to the user as the volume's note
        return [Volume(vg_name, "unknown", 0, _no_stream, f"volume group unreadable: {exc}")]
    found = []
    for lv in vg.lv:
        if not lv.is_visible or lv.type in _SKIPPED_LV_TYPES:
            continue
        found.append(_logical_volume(vg_name, lv))
    return found


def _logical_volume(vg_name: str, lv) -> Volume:
    name = f"{vg_name}/{lv.name}"
    size = sum(s.extent_count for s in lv.segments) * lv.vg.extent_size * 512
    try:
        stream = open_logical_volume(lv)
    except NotImplementedError:
        return Volume(name, "unknown", size, _no_stream, f"LVM {lv.type} volumes cannot be read in-process")
    except Exception as exc:  # shown to the user as the volume's note
        return Volume(name, "unknown", size, _no_stream, f"LVM {lv.type} volume unreadable: {exc}")
    return Volume(name, probe(stream), size, _const(stream), f"LVM {lv.type} volume")


def choose_volume(volumes: list[Volume], name: str | None) -> Volume:
    """The volume named `name`, or the only filesystem on the disk; a clear error otherwise."""
    if name is not None:
        for volume in volumes:
            if volume.name == name:
                return require_readable(volume)
        raise VolumeChoice(f"no volume {name!r} on this disk; it has {describe(volumes)}")
    filesystems = [v for v in volumes if v.is_filesystem]
    if len(filesystems) == 1:
        return filesystems[0]
    if len(filesystems) > 1:
        raise VolumeChoice(
            f"this disk has {len(filesystems)} filesystems ({describe(filesystems)}): choose one with --volume"
        )
    encrypted = [v for v in volumes if v.kind == "luks"]
    if encrypted:
        return require_readable(encrypted[0])
    raise UnknownFilesystem(
        f"no filesystem hvbackup can read on this disk ({describe(volumes, notes=True)}); it reads ext4, xfs and "
        "btrfs — for anything else use `hvbackup mount` and the kernel"
    )


def require_readable(volume: Volume) -> Volume:
    where = _where(volume.name)
    if volume.kind == "luks":
        raise EncryptedVolume(
            f"encrypted volume (LUKS) at {where}: hvbackup cannot read inside it; restore the disk or mount it "
            "with `hvbackup mount` and cryptsetup"
        )
    if not volume.is_filesystem:
        detail = f": {volume.note}" if volume.note else ""
        raise UnknownFilesystem(
            f"unknown filesystem at {where} ({volume.kind}{detail}); hvbackup reads ext4, xfs and btrfs — "
            "for anything else use `hvbackup mount` and the kernel"
        )
    return volume


def _where(name: str) -> str:
    if name == "disk":
        return "the whole disk"
    if name.startswith("p") and name[1:].isdigit():
        return f"partition {name[1:]}"
    return f"logical volume {name}"


def describe(volumes: list[Volume], notes: bool = False) -> str:
    def one(v: Volume) -> str:
        return f"{v.name} {v.kind}: {v.note}" if notes and v.note else f"{v.name} {v.kind}"

    return ", ".join(one(v) for v in volumes) or "no volumes"
