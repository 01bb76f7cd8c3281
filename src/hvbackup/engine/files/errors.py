"""What file-level restore can tell a user went wrong, each as one line."""

from __future__ import annotations

from hvbackup.errors import HvBackupError, UsageError


class FileRestoreError(HvBackupError):
    """A file-level restore could not be done as asked."""


class PathNotFound(FileRestoreError):
    """The path does not exist in the chosen filesystem of the snapshot."""


class NotADirectory(FileRestoreError):
    """A directory was expected."""


class IsADirectory(FileRestoreError):
    """A file was expected."""


class UnknownFilesystem(FileRestoreError):
    """The volume holds nothing hvbackup can read in-process."""


class EncryptedVolume(FileRestoreError):
    """A LUKS volume: its contents cannot be read without the key and the kernel."""


class UnsupportedFilesystem(FileRestoreError):
    """A filesystem of a known kind, using a feature the in-process reader does not implement."""


class VolumeChoice(UsageError):
    """The disk holds several volumes, or none by the given name."""


class UnsafeTarget(FileRestoreError):
    """Extraction would write outside the target folder or over existing files."""


class TargetNotWritable(FileRestoreError):
    """The folder to extract into cannot be created or written (read-only, permission denied)."""


class MountpointUnusable(FileRestoreError):
    """The folder to mount on is missing, not a folder, not empty, or already mounted on."""


class NoFuse(FileRestoreError):
    """FUSE (its device, fusermount, the library) is not available on this machine."""


class MountRefused(FileRestoreError):
    """libfuse refused the mount for a reason the checks before it did not catch."""
