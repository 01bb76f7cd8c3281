"""Errors raised while opening, reading or writing a disk image."""

from hvbackup.errors import HvBackupError


class DiskError(HvBackupError):
    """A disk image cannot be opened, read or written as asked; the message names the file and the problem."""


class VhdxError(DiskError):
    """A VHDX/AVHDX file is malformed or unsupported; the message names the structure that is wrong."""


class VhdError(DiskError):
    """A VHD file is malformed or unsupported."""
