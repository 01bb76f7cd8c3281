"""Virtual disk images: VHDX/AVHDX (read and write), VHD and raw (read), behind one interface.

with open_disk("disk.avhdx") as disk:
    for offset, length in disk.allocated_ranges():
        data = disk.read(offset, length)
"""

from hvbackup.disk.digest import virtual_sha256
from hvbackup.disk.errors import DiskError, VhdError, VhdxError
from hvbackup.disk.image import DiskImage
from hvbackup.disk.opener import open_disk, open_named_disk
from hvbackup.disk.source import ByteSource, FileSource
from hvbackup.disk.vhdx.merge import finish_merge, merge_differencing
from hvbackup.disk.vhdx.writer import VhdxWriter, create_differencing, create_vhdx, open_vhdx_writer

__all__ = [
    "ByteSource",
    "DiskError",
    "DiskImage",
    "FileSource",
    "VhdError",
    "VhdxError",
    "VhdxWriter",
    "create_differencing",
    "create_vhdx",
    "finish_merge",
    "merge_differencing",
    "open_disk",
    "open_named_disk",
    "open_vhdx_writer",
    "virtual_sha256",
]
