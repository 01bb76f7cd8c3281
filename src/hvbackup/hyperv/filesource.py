"""A ByteSource over a local file: a disk on the host itself, or in the lab."""

from __future__ import annotations

from hvbackup.hyperv.errors import ObjectNotFound, TransportError
from hvbackup.localfile import LocalFile


class LocalFileSource(LocalFile):
    """A disk file on this machine (hvbackup.localfile) whose failures are Hyper-V errors."""

    def cannot_open(self, exc: OSError) -> Exception:
        if isinstance(exc, FileNotFoundError):
            return ObjectNotFound(f"disk file not found: {self.name}")
        return TransportError(f"cannot open disk file {self.name}: {exc.strerror or exc}")
