"""What can go wrong with a repository, each as an HvBackupError with its documented exit code."""

from __future__ import annotations

from hvbackup.errors import (
    EXIT_LOCKED,
    EXIT_NO_REPOSITORY,
    EXIT_WRONG_PASSWORD,
    HvBackupError,
)


class RepositoryNotFound(HvBackupError):
    """No repository at the given path (no config object)."""

    exit_code = EXIT_NO_REPOSITORY


class RepositoryExists(HvBackupError):
    """`init` was pointed at a directory that is not empty."""


class RepositoryLocked(HvBackupError):
    """Another process holds a lock that excludes the one asked for."""

    exit_code = EXIT_LOCKED


class WrongPassword(HvBackupError):
    """No key slot opens with the given passphrase or key file."""

    exit_code = EXIT_WRONG_PASSWORD


class RepositoryReadOnly(HvBackupError):
    """A command that writes met a repository it cannot write to (read-only filesystem, no permission)."""


KEPT_CHUNKS_NOTE = (
    "the chunks already stored are kept for prune's safety window (1 h by default), so a backup "
    "run again within it reuses them, and `hvbackup prune` reclaims them after it"
)


def with_kept_chunks_note(message: str) -> str:
    """A failed backup's message, ending with what becomes of the chunks it stored (once)."""
    return message if KEPT_CHUNKS_NOTE in message else f"{message}; {KEPT_CHUNKS_NOTE}"


class RepositoryFull(HvBackupError):
    """The repository's filesystem (or quota) is full."""


class NoKeySlot(HvBackupError):
    """The repository has no readable key slot: its keys/ folder is damaged or emptied (not a wrong passphrase)."""


class UnsupportedFormat(HvBackupError):
    """The repository was written by a newer hvbackup, or is not an hvbackup repository."""


class DamagedObject(HvBackupError):
    """A repository object exists but cannot be read back intact."""


class MissingObject(HvBackupError):
    """A repository object that should exist does not."""


class ChunkError(HvBackupError):
    """A chunk cannot be read back as it was written. `chunk_id` is its hex id."""

    def __init__(self, chunk_id: bytes, message: str) -> None:
        super().__init__(message)
        self.chunk_id = chunk_id.hex()


class ChunkMissing(ChunkError, MissingObject):
    def __init__(self, chunk_id: bytes) -> None:
        super().__init__(chunk_id, f"chunk {chunk_id.hex()} is missing from the repository")


class ChunkDamaged(ChunkError, DamagedObject):
    def __init__(self, chunk_id: bytes, reason: str) -> None:
        super().__init__(chunk_id, f"chunk {chunk_id.hex()} is damaged: {reason}")
        self.reason = reason


class SnapshotNotFound(HvBackupError):
    """No snapshot matches the reference (id, prefix, or "latest"), or the prefix is ambiguous."""


class IndexMissing(MissingObject):
    """A snapshot's disk index object is gone."""


class IndexDamaged(DamagedObject):
    """A snapshot's disk index cannot be decrypted or does not match its manifest."""


class ObjectNotFound(MissingObject):
    """A backend has no object of that name (translated into a specific error by the repository)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"object {name} does not exist")
        self.name = name
