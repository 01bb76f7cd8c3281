"""Key slots: the repository's key material wrapped by a passphrase.

A slot is the JSON object `keys/<slot id>`:

    {"version": 1, "kdf": "scrypt", "n": 65536, "r": 8, "p": 1, "salt": <base64 32 bytes>,
     "nonce": <base64 12 bytes>, "wrapped": <base64 AES-256-GCM(key material)>,
     "created": <UTC ISO 8601>, "hostname": ..., "label": ...}

The wrapping key is scrypt(passphrase, salt, n, r, p) (32 bytes); the wrapped payload is the
64 bytes of key material, sealed with the repository id as associated data.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hvbackup.errors import UsageError
from hvbackup.repo.crypto import KeyMaterial

SCRYPT_N = 2**16
SCRYPT_R = 8
SCRYPT_P = 1
SLOT_VERSION = 1


@dataclass(frozen=True)
class KeySlot:
    slot_id: str
    doc: dict

    @property
    def created(self) -> str:
        return self.doc.get("created", "")

    @property
    def label(self) -> str:
        return self.doc.get("label", "")

    @property
    def hostname(self) -> str:
        return self.doc.get("hostname", "")

    def to_bytes(self) -> bytes:
        return json.dumps(self.doc, indent=2).encode()

    @classmethod
    def from_bytes(cls, slot_id: str, raw: bytes) -> KeySlot:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("kdf") != "scrypt":
            raise ValueError("not a scrypt key slot")
        return cls(slot_id, doc)

    def to_json(self) -> dict:
        return {
            "id": self.slot_id,
            "created": self.created,
            "hostname": self.hostname,
            "label": self.label,
            "kdf": f"scrypt n={self.doc['n']} r={self.doc['r']} p={self.doc['p']}",
        }


def wrap(keys: KeyMaterial, passphrase: str, repo_id: str, *, label: str = "", n: int = SCRYPT_N) -> KeySlot:
    salt = os.urandom(32)
    nonce = os.urandom(12)
    kek = _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    wrapped = AESGCM(kek).encrypt(nonce, keys.to_bytes(), _aad(repo_id))
    doc = {
        "version": SLOT_VERSION,
        "kdf": "scrypt",
        "n": n,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "wrapped": base64.b64encode(wrapped).decode(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "label": label,
    }
    return KeySlot(secrets.token_hex(8), doc)


def unwrap(slot: KeySlot, passphrase: str, repo_id: str) -> KeyMaterial | None:
    """The key material if the passphrase opens this slot, else None."""
    doc = slot.doc
    kek = _derive(passphrase, base64.b64decode(doc["salt"]), int(doc["n"]), int(doc["r"]), int(doc["p"]))
    try:
        raw = AESGCM(kek).decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["wrapped"]), _aad(repo_id))
    except InvalidTag:
        return None
    return KeyMaterial.from_bytes(raw)


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32)


def _aad(repo_id: str) -> bytes:
    return f"hvbackup key slot:{repo_id}".encode()


def write_key_file(path: Path, text: str, *, force: bool = False) -> None:
    """Write an exported key to `path`, mode 0600, atomically: the file appears whole or not at
    all (a temporary file is written, synced and then linked or renamed into place). An existing
    file is never replaced unless `force`."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the file to write the key to")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; refusing to overwrite it (use --force to replace it)")
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise UsageError(f"cannot write {path}: the folder {path.parent} does not exist") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, path, force)
    finally:
        tmp.unlink(missing_ok=True)


def _move_into_place(tmp: Path, path: Path, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # unlike a rename, fails if a file appeared at `path` meanwhile
    except FileExistsError:
        raise UsageError(f"{path} exists; refusing to overwrite it (use --force to replace it)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
            raise
        os.rename(tmp, path)  # a filesystem without hard links
