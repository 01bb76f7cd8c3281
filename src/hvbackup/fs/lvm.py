"""Opening LVM logical volumes, with the striping arithmetic done right.

dissect.volume 3.18 reads a striped segment as its stripes one after another (a concatenation),
which is only right for one stripe. Here a segment with several stripes is read round-robin
in stripe-size units, as device-mapper's `striped` target lays it out; every other segment
type is opened by dissect.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from dissect.util.stream import AlignedStream, MappingStream

SECTOR = 512


class StripedStream(AlignedStream):
    """A striped LVM segment: unit k of the LV is on stripe k % n, at row k // n of that stripe."""

    def __init__(self, stripes: list[tuple[BinaryIO, int]], unit: int, size: int) -> None:
        super().__init__(size, align=unit)
        self.stripes = stripes  # (PV data stream, byte offset of the stripe's first extent)
        self.unit = unit

    def _read(self, offset: int, length: int) -> bytes:
        parts = []
        end = min(offset + length, self.size)
        while offset < end:
            k, within = divmod(offset, self.unit)
            row, stripe = divmod(k, len(self.stripes))
            fh, base = self.stripes[stripe]
            take = min(self.unit - within, end - offset)
            fh.seek(base + row * self.unit + within)
            parts.append(fh.read(take))
            offset += take
        return b"".join(parts)


def open_logical_volume(lv: Any) -> BinaryIO:
    """A stream over the whole LV; NotImplementedError for segment types nobody can read here."""
    extent = lv.vg.extent_size * SECTOR
    stream = MappingStream()
    for segment in lv.segments:
        offset = segment.start_extent * extent
        size = segment.extent_count * extent
        stream.add(offset, size, _open_segment(segment, extent, size))
    return stream


def _open_segment(segment: Any, extent: int, size: int) -> BinaryIO:
    stripes = getattr(segment, "stripes", None)
    if segment.type != "striped" or not stripes or len(stripes) < 2:
        return segment.open()
    pvs = segment.lv.vg.physical_volumes
    opened = {}
    placed = []
    for pv_name, first_extent in stripes:
        if pv_name not in opened:
            device = pvs[pv_name].dev
            if device is None:
                raise ValueError(f"physical volume {pv_name} of {segment.lv.name} is not on this disk")
            opened[pv_name] = device.open()
        placed.append((opened[pv_name], first_extent * extent))
    return StripedStream(placed, segment.stripe_size * SECTOR, size)
