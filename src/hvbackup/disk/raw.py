"""Raw images: the virtual disk is the file itself (or a block device)."""

from __future__ import annotations

from hvbackup.disk.image import DATA, DiskImage, Run
from hvbackup.disk.source import ByteSource


class RawImage(DiskImage):
    format = "raw"
    is_fixed = True

    def __init__(self, source: ByteSource, *, logical_sector_size: int = 512) -> None:
        super().__init__(source)
        self.size = source.size
        self.logical_sector_size = logical_sector_size
        self.physical_sector_size = logical_sector_size

    def _map(self, offset: int, length: int) -> list[Run]:
        return [Run(offset, length, DATA, offset)]

    def allocated_ranges(self) -> list[tuple[int, int]]:
        """Holes of a sparse file are skipped (SEEK_DATA/SEEK_HOLE); other sources are wholly allocated."""
        data_ranges = getattr(self.source, "data_ranges", None)
        if data_ranges is not None:
            return data_ranges()
        return [(0, self.size)] if self.size else []
