"""The repository's plain-text config object: format version, id, chunk size, cipher."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from hvbackup.errors import UsageError
from hvbackup.repo.errors import UnsupportedFormat

FORMAT_NAME = "hvbackup-repository"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    id: str
    chunk_size: int
    cipher: str = "aes-256-gcm"
    id_hash: str = "blake3-keyed"
    compression: str = "zstd"
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    created: str = ""
    key_check: str = ""

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> RepoConfig:
        try:
            doc = json.loads(raw)
        except ValueError:
            raise UnsupportedFormat(f"{where}: the config is not JSON; not an hvbackup repository") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise UnsupportedFormat(f"{where}: not an hvbackup repository (config format {doc.get('format')!r})")
        version = doc.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"{where}: repository format version {version} is newer than this hvbackup supports "
                f"({FORMAT_VERSION}); upgrade hvbackup"
            )
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**known)


def check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or chunk_size & (chunk_size - 1):
        raise UsageError(
            f"chunk size must be a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, not {chunk_size}"
        )
