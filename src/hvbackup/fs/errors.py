"""What reading a filesystem or a volume can tell a user went wrong, each as one line."""

from __future__ import annotations

from hvbackup.errors import HvBackupError, UsageError


class FilesystemError(HvBackupError):
    """A filesystem or volume could not be read as asked."""


class PathNotFound(FilesystemError):
    """The path does not exist in the chosen filesystem."""


class NotADirectory(FilesystemError):
    """A directory was expected."""


class IsADirectory(FilesystemError):
    """A file was expected."""


class UnknownFilesystem(FilesystemError):
    """The volume holds nothing hvbackup can read in-process."""


class EncryptedVolume(FilesystemError):
    """A LUKS volume: its contents cannot be read without the key and the kernel."""


class UnsupportedFilesystem(FilesystemError):
    """A filesystem of a known kind, using a feature the in-process reader does not implement."""


class DamagedFilesystem(FilesystemError):
    """A structure of the filesystem is damaged (a bad magic number, a loop)."""


class VolumeChoice(UsageError):
    """The disk holds several volumes, or none by the given name."""
