"""What extracting or mounting from a snapshot can tell a user went wrong, each as one line.

Reading the filesystem itself has its own errors: hvbackup/fs/errors.py."""

from __future__ import annotations

from hvbackup.errors import HvBackupError


class FileRestoreError(HvBackupError):
    """A file-level restore could not be done as asked."""


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
