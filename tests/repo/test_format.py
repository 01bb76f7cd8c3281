"""docs/FORMAT.md is enough to read a repository: an independent reader written from it, plus
round-trip and tamper properties of the binary structures."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import blake3
import pytest
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from hvbackup.repo import DiskIndex, Repository
from hvbackup.repo.crypto import KeyMaterial, Sealer, SealError

from .conftest import CHUNK, PASSWORD, chunk_data, make_snapshot


class SecondReader:
    """Reads a snapshot's disk using only what docs/FORMAT.md says."""

    def __init__(self, root: Path, passphrase: str) -> None:
        self.root = root
        config = json.loads((root / "config").read_text())
        assert config["format"] == "hvbackup-repository" and config["format_version"] == 1
        self.repo_id = config["id"]
        for slot_path in (root / "keys").iterdir():
            slot = json.loads(slot_path.read_text())
            kek = hashlib.scrypt(
                passphrase.encode(),
                salt=base64.b64decode(slot["salt"]),
                n=slot["n"],
                r=slot["r"],
                p=slot["p"],
                maxmem=2**30,
                dklen=32,
            )
            try:
                material = AESGCM(kek).decrypt(
                    base64.b64decode(slot["nonce"]),
                    base64.b64decode(slot["wrapped"]),
                    f"hvbackup key slot:{self.repo_id}".encode(),
                )
            except Exception:
                continue
            self.aead_key, self.id_key = material[:32], material[32:]
            return
        raise AssertionError("no slot opened")

    def open(self, name: str, context: str) -> bytes:
        blob = (self.root / name).read_bytes()
        header = blob[:20]
        assert header[:4] == b"HVBO" and header[4] == 1
        cipher = {1: AESGCM, 2: ChaCha20Poly1305}[header[6]](self.aead_key)
        plain = cipher.decrypt(header[8:20], blob[20:], header + context.encode())
        return zstandard.ZstdDecompressor().decompress(plain) if header[5] & 1 else plain

    def read_disk(self, snapshot_id: str, disk: str) -> bytes:
        manifest = json.loads(self.open(f"snapshots/{snapshot_id}", f"snapshot:{snapshot_id}"))
        entry = manifest["indexes"][disk]
        raw = self.open(entry["object"], f"index:{entry['object']}")
        assert blake3.blake3(raw, key=self.id_key).hexdigest() == entry["hash"]
        magic, size, chunk_size, count = struct.unpack_from("<8sQQQ", raw)
        assert magic == b"HVBINDEX"
        out = bytearray()
        for i in range(count):
            cid = raw[32 + 32 * i : 64 + 32 * i]
            length = min(chunk_size, size - i * chunk_size)
            if cid == bytes(32):
                out += bytes(length)
                continue
            h = cid.hex()
            data = self.open(f"chunks/{h[:2]}/{h[2:4]}/{h}", f"chunk:{h}")
            assert blake3.blake3(data, key=self.id_key).digest() == cid
            out += data
        return bytes(out)


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "chacha20-poly1305"])
def test_a_reader_written_from_format_md_reads_a_snapshot(tmp_path: Path, cipher: str) -> None:
    with Repository.init(tmp_path / "r", PASSWORD, chunk_size=CHUNK, cipher=cipher, kdf_n=2**12) as repo:
        chunks = [chunk_data(1), None, chunk_data(2), chunk_data(1), b"\x07" * CHUNK]
        info = make_snapshot(repo, "vm", {"sda": chunks})
    expected = b"".join(c if c is not None else bytes(CHUNK) for c in chunks)
    assert SecondReader(tmp_path / "r", PASSWORD).read_disk(info.id, "sda") == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.sampled_from([512, 4096, 65536]), st.randoms(use_true_random=False))
def test_disk_index_round_trip(chunks: int, chunk_size: int, rnd) -> None:
    size = max(0, chunks * chunk_size - rnd.randrange(chunk_size)) if chunks else 0
    count = -(-size // chunk_size)
    index = DiskIndex(size, chunk_size, rnd.randbytes(32 * count))
    again = DiskIndex.from_bytes(index.to_bytes())
    assert again == index and len(again) == count
    if count:
        assert sum(again.chunk_length(i) for i in range(count)) == size


def test_disk_index_rejects_wrong_lengths() -> None:
    with pytest.raises(ValueError):
        DiskIndex(3 * CHUNK, CHUNK, bytes(64))
    raw = DiskIndex(2 * CHUNK, CHUNK, bytes(64)).to_bytes()
    with pytest.raises(ValueError):
        DiskIndex.from_bytes(raw[:-1])


SEALER = Sealer(KeyMaterial.generate())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0), st.integers(0, 7))
def test_any_flipped_bit_of_a_sealed_object_is_detected(payload: bytes, where: int, bit: int) -> None:
    blob = bytearray(SEALER.seal(payload, "chunk:test"))
    assert SEALER.open(bytes(blob), "chunk:test") == payload
    blob[where % len(blob)] ^= 1 << bit
    with pytest.raises(SealError):
        SEALER.open(bytes(blob), "chunk:test")


def test_sealed_object_is_bound_to_its_context() -> None:
    blob = SEALER.seal(b"data", "snapshot:aaaa")
    with pytest.raises(SealError):
        SEALER.open(blob, "snapshot:bbbb")
