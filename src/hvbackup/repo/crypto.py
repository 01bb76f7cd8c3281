"""Key material and the sealed-object format shared by every encrypted repository object.

Sealed object (all integers little-endian):

    offset  size  field
    0       4     magic b"HVBO"
    4       1     format version (1)
    5       1     flags: bit 0 = payload is zstd-compressed
    6       1     cipher: 1 = AES-256-GCM, 2 = ChaCha20-Poly1305
    7       1     reserved, 0
    8       12    nonce, random for every object
    20      ...   ciphertext followed by the 16-byte tag

The associated data is the 20-byte header followed by a context string naming what the object
is ("chunk:<hex id>", "snapshot:<id>", ...), so an object cannot be passed off as another one.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

MAGIC = b"HVBO"
OBJECT_VERSION = 1
HEADER_SIZE = 20
NONCE_SIZE = 12
TAG_SIZE = 16
FLAG_ZSTD = 0x01
ZSTD_LEVEL = 1

CIPHERS = {"aes-256-gcm": 1, "chacha20-poly1305": 2}
_CIPHER_CLASSES: dict[int, type[AESGCM] | type[ChaCha20Poly1305]] = {1: AESGCM, 2: ChaCha20Poly1305}


class SealError(Exception):
    """A sealed object failed to open: bad header, wrong tag, or undecodable payload."""


@dataclass(frozen=True)
class KeyMaterial:
    """The repository's random secret keys: one for the AEAD cipher, one for chunk ids."""

    aead_key: bytes
    id_key: bytes

    @classmethod
    def generate(cls) -> KeyMaterial:
        return cls(aead_key=os.urandom(32), id_key=os.urandom(32))

    def to_bytes(self) -> bytes:
        return self.aead_key + self.id_key

    @classmethod
    def from_bytes(cls, raw: bytes) -> KeyMaterial:
        if len(raw) != 64:
            raise ValueError("key material must be 64 bytes")
        return cls(aead_key=raw[:32], id_key=raw[32:])

    def export(self, repo_id: str) -> str:
        """A printable JSON document holding the raw keys, for safekeeping."""
        return json.dumps(
            {
                "type": "hvbackup-key",
                "repository": repo_id,
                "aead_key": base64.b64encode(self.aead_key).decode(),
                "id_key": base64.b64encode(self.id_key).decode(),
            },
            indent=2,
        )

    @classmethod
    def import_(cls, text: str) -> tuple[str, KeyMaterial]:
        """(repository id, key material) from an exported key document."""
        doc = json.loads(text)
        if doc.get("type") != "hvbackup-key":
            raise ValueError("not an hvbackup key export")
        return doc["repository"], cls(
            aead_key=base64.b64decode(doc["aead_key"], validate=True),
            id_key=base64.b64decode(doc["id_key"], validate=True),
        )


class Sealer:
    """Seals and opens objects and computes chunk ids; safe to share between threads."""

    def __init__(self, keys: KeyMaterial, cipher: str = "aes-256-gcm") -> None:
        if cipher not in CIPHERS:
            raise ValueError(f"unknown cipher {cipher!r}")
        self.keys = keys
        self.cipher_id = CIPHERS[cipher]
        self._local = threading.local()

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        # blake3 releases the GIL for inputs of 2 KiB and more.
        return blake3.blake3(data, key=self.keys.id_key).digest()

    def seal(self, payload: bytes | memoryview, context: str, *, compress: bool = True) -> bytearray:
        flags = 0
        if compress:
            packed = self._thread().compressor.compress(payload)
            if len(packed) < len(payload):
                payload, flags = packed, FLAG_ZSTD
        nonce = os.urandom(NONCE_SIZE)
        header = MAGIC + bytes((OBJECT_VERSION, flags, self.cipher_id, 0)) + nonce
        blob = bytearray(HEADER_SIZE + len(payload) + TAG_SIZE)
        blob[:HEADER_SIZE] = header
        self._aead(self.cipher_id).encrypt_into(
            nonce, payload, header + context.encode(), memoryview(blob)[HEADER_SIZE:]
        )
        return blob

    def open(self, blob: bytes | memoryview, context: str) -> bytes:
        header, flags, aead = self._parse(blob)
        payload = _decrypt(aead, header, blob[HEADER_SIZE:], context)
        if flags & FLAG_ZSTD:
            try:
                payload = self._thread().decompressor.decompress(payload)
            except zstandard.ZstdError as exc:
                raise SealError(f"cannot decompress: {exc}") from None
        return payload

    def open_into(self, blob: bytes | memoryview, context: str, out: memoryview) -> None:
        """Open an object whose plaintext is exactly len(out) bytes straight into `out`, sparing
        the copies `open` makes; SealError if it does not decrypt or is not that long."""
        header, flags, aead = self._parse(blob)
        if not flags & FLAG_ZSTD:
            if len(blob) - HEADER_SIZE - TAG_SIZE != len(out):
                raise SealError(f"holds {len(blob) - HEADER_SIZE - TAG_SIZE} bytes, expected {len(out)}")
            try:
                aead.decrypt_into(header[8:], blob[HEADER_SIZE:], header + context.encode(), out)
            except InvalidTag:
                raise SealError("authentication tag does not match (corrupted or tampered)") from None
            return
        packed = _decrypt(aead, header, blob[HEADER_SIZE:], context)
        try:
            reader = self._thread().decompressor.stream_reader(packed, read_across_frames=False)
            done = 0
            while done < len(out) and (got := reader.readinto(out[done:])):
                done += got
            extra = reader.read(1)
        except zstandard.ZstdError as exc:
            raise SealError(f"cannot decompress: {exc}") from None
        if done != len(out) or extra:
            raise SealError(f"decompresses to {'more' if extra else done} bytes, expected {len(out)}")

    def _parse(self, blob: bytes | memoryview) -> tuple[bytes, int, AESGCM | ChaCha20Poly1305]:
        if len(blob) < HEADER_SIZE + TAG_SIZE:
            raise SealError(f"too short ({len(blob)} bytes)")
        header = bytes(blob[:HEADER_SIZE])
        if header[:4] != MAGIC:
            raise SealError("bad magic")
        version, flags, cipher_id = header[4], header[5], header[6]
        if version != OBJECT_VERSION:
            raise SealError(f"unknown object version {version}")
        if cipher_id not in _CIPHER_CLASSES:
            raise SealError(f"unknown cipher id {cipher_id}")
        return header, flags, self._aead(cipher_id)

    def _thread(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _ThreadState(self.keys.aead_key)
        return state

    def _aead(self, cipher_id: int) -> AESGCM | ChaCha20Poly1305:
        return self._thread().aead(cipher_id)


def _decrypt(aead: AESGCM | ChaCha20Poly1305, header: bytes, sealed: bytes | memoryview, context: str) -> bytes:
    try:
        return aead.decrypt(header[8:], sealed, header + context.encode())
    except InvalidTag:
        raise SealError("authentication tag does not match (corrupted or tampered)") from None


class _ThreadState:
    """zstd contexts must not be shared between threads (they crash), so each thread has its own."""

    def __init__(self, aead_key: bytes) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        self.decompressor = zstandard.ZstdDecompressor()
        self._key = aead_key
        self._aeads: dict[int, AESGCM | ChaCha20Poly1305] = {}

    def aead(self, cipher_id: int) -> AESGCM | ChaCha20Poly1305:
        if cipher_id not in self._aeads:
            self._aeads[cipher_id] = _CIPHER_CLASSES[cipher_id](self._key)
        return self._aeads[cipher_id]
