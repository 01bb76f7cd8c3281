"""open_disk: detect the format from the content and open differencing parents along the chain."""

from __future__ import annotations

import ntpath
import os
import posixpath
from collections.abc import Callable

from hvbackup.disk.errors import DiskError, VhdxError
from hvbackup.disk.image import DiskImage
from hvbackup.disk.memory import keep_large_buffers
from hvbackup.disk.raw import RawImage
from hvbackup.disk.source import ByteSource, FileSource
from hvbackup.disk.vhd import VhdImage, has_vhd_footer
from hvbackup.disk.vhdx.reader import VhdxImage
from hvbackup.disk.vhdx.structures import FILE_IDENTIFIER_SIGNATURE

Opener = Callable[[str], ByteSource]
MAX_CHAIN_DEPTH = 64


def open_disk(path_or_source: str | os.PathLike[str] | ByteSource, *, opener: Opener | None = None) -> DiskImage:
    """Open a VHDX/AVHDX, VHD or raw image; parents of differencing disks are opened through `opener`."""
    keep_large_buffers()
    opener = opener or FileSource
    source = opener(os.fspath(path_or_source)) if isinstance(path_or_source, (str, os.PathLike)) else path_or_source
    return _open_chain(source, opener, seen=[])


# Extensions that promise a format: a file so named must have that format's signature.
NAMED_FORMATS = {".vhdx": "vhdx", ".avhdx": "vhdx", ".vhd": "vhd"}


def open_named_disk(path: str | os.PathLike[str]) -> DiskImage:
    """open_disk for a path a user names: an empty file is refused, and so is a file whose
    extension names a format (.vhdx, .avhdx, .vhd) that its content does not have, instead of
    being read as raw; other names (.raw, .img, block devices) are detected from the content."""
    image = open_disk(path)
    try:
        _check_named_format(os.fspath(path), image)
    except BaseException:
        image.close()
        raise
    return image


def _check_named_format(name: str, image: DiskImage) -> None:
    if image.source.size == 0:
        raise DiskError(f"{name}: is empty (0 bytes), not a disk image")
    named = NAMED_FORMATS.get(os.path.splitext(name)[1].lower())
    if named is None or image.format == named:
        return
    found = f"holds a {image.format.upper()} image" if image.format != "raw" else f"has no {named.upper()} signature"
    raise DiskError(
        f"{name}: the name says {named.upper()} but the file {found}; "
        "if it really is a raw disk image, give it a .raw or .img name"
    )


def _open_chain(source: ByteSource, opener: Opener, seen: list[str]) -> DiskImage:
    try:
        image = _open_one(source)
        if isinstance(image, VhdxImage) and image.is_differencing:
            _open_parent(image, opener, [*seen, _identity(source.name)])
        return image
    except BaseException:
        source.close()
        raise


def _open_one(source: ByteSource) -> DiskImage:
    if source.size >= 8 and source.pread(0, 8) == FILE_IDENTIFIER_SIGNATURE:
        return VhdxImage(source)
    if has_vhd_footer(source):
        return VhdImage(source)
    return RawImage(source)


def _identity(name: str) -> str:
    return os.path.realpath(name) if os.path.exists(name) else name


def attach_parent_chain(child: VhdxImage, opener: Opener) -> None:
    """Open and attach the parents of a differencing disk opened some other way (the writer)."""
    _open_parent(child, opener, [_identity(child.name)])


def _open_parent(child: VhdxImage, opener: Opener, seen: list[str]) -> None:
    if len(seen) > MAX_CHAIN_DEPTH:
        raise VhdxError(f"{child.name}: differencing chain is deeper than {MAX_CHAIN_DEPTH} disks")
    tried: list[str] = []
    for candidate in parent_candidates(child.name, child.parent_locator or {}):
        if _identity(candidate) in seen:
            raise VhdxError(f"{child.name}: parent chain loops back to {candidate}")
        try:
            source = opener(candidate)
        except (DiskError, OSError):
            tried.append(candidate)
            continue
        parent = _open_chain(source, opener, seen)
        try:
            child.attach_parent(parent, candidate)
        except BaseException:
            parent.close()
            raise
        return
    raise VhdxError(f"{child.name}: parent disk not found (tried {', '.join(tried) or 'no path'})")


def parent_candidates(child_name: str, locator: dict[str, str]) -> list[str]:
    """Paths to try for the parent, in order: relative to the child, absolute, volume path."""
    windows_child = "\\" in child_name or ntpath.splitdrive(child_name)[0] != ""
    candidates: list[str] = []
    relative = locator.get("relative_path")
    if relative:
        if windows_child:
            candidates.append(ntpath.normpath(ntpath.join(ntpath.dirname(child_name), relative)))
        else:
            candidates.append(
                posixpath.normpath(posixpath.join(posixpath.dirname(child_name), relative.replace("\\", "/")))
            )
    for key in ("absolute_win32_path", "volume_path"):
        if locator.get(key):
            candidates.append(locator[key])
    return list(dict.fromkeys(candidates))
