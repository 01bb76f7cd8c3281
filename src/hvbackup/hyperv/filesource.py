"""A ByteSource over a local file: a disk on the host itself, or in the lab."""

from __future__ import annotations

import os
import threading

from hvbackup.hyperv.errors import ObjectNotFound, TransportError

_HAS_PREAD = hasattr(os, "pread")


class LocalFileSource:
    """Random-access reads of one file. Thread-safe: os.pread where the OS has it, else a lock
    around seek+read (Windows, where Python opens files sharing read and write with Hyper-V)."""

    def __init__(self, path: str) -> None:
        self.name = path
        try:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise ObjectNotFound(f"disk file not found: {path}") from None
        except OSError as exc:
            raise TransportError(f"cannot open disk file {path}: {exc.strerror or exc}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self._lock = threading.Lock()

    def pread(self, offset: int, length: int) -> bytes:
        if _HAS_PREAD:
            return os.pread(self._file.fileno(), length, offset)
        with self._lock:
            self._file.seek(offset)
            return self._file.read(length) or b""

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LocalFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
