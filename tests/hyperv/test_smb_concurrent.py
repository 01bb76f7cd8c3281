"""SmbFileSource read by the engine's thread pool, against a real SMB server (Debian's samba) on the loopback.

Every real backup reads the host's disk files over SMB from `ordered_map`'s workers, through the
disk layer's `pread_into`. A read must never fail or come back short because another thread used
the connection's credits (docs/HYPERV.md §16), whether the session is signed or encrypted.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import smbclient

from hvbackup.disk.source import pread_into
from hvbackup.engine.pipeline import default_workers, ordered_map
from hvbackup.hyperv.errors import TransportError
from hvbackup.hyperv.smb import SmbCredentials, SmbFileSource

from .samba import PASSWORD, Samba, run_samba

pytestmark = [pytest.mark.root, pytest.mark.slow]

CHUNK = 4 * 1024 * 1024  # the repository's default chunk size, the engine's read size
UNC = "\\\\127.0.0.1\\C$\\VMs\\{name}"


@pytest.fixture(scope="module")
def samba(tmp_path_factory):
    with run_samba(tmp_path_factory.mktemp("smb")) as server:
        yield server


def write_random(path: Path, size: int) -> str:
    """Random (incompressible) bytes, written once; returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for offset in range(0, size, 64 * 1024 * 1024):
            block = os.urandom(min(64 * 1024 * 1024, size - offset))
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small_file(samba):
    size = 96 * 1024 * 1024 + 4097  # not a multiple of the chunk: the last read is short of a chunk
    return "small.vhdx", size, write_random(samba.share / "VMs" / "small.vhdx", size)


@pytest.fixture(scope="module")
def big_file(samba):
    size = 2 * 1024**3 + 12345
    return "big.vhdx", size, write_random(samba.share / "VMs" / "big.vhdx", size)


def credentials(samba: Samba, *, encrypt: bool = False) -> SmbCredentials:
    return SmbCredentials(username="root", password=PASSWORD, port=samba.port, encrypt=encrypt or None)


def read_like_the_engine(source: SmbFileSource, workers: int | None = None) -> str:
    """Read the whole file in chunks from the engine's pool; the SHA-256 of what came back, in order."""

    def read_chunk(offset: int) -> bytearray:
        buffer = bytearray(min(CHUNK, source.size - offset))
        pread_into(source, memoryview(buffer), offset)
        return buffer

    digest = hashlib.sha256()
    for chunk in ordered_map(read_chunk, range(0, source.size, CHUNK), workers=workers):
        digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("workers", [2, default_workers(), 8])
def test_many_threads_read_from_the_first_request_of_a_new_source(samba, small_file, workers):
    name, size, sha = small_file
    for _ in range(3):  # each source starts with new connections, the moment credits are scarcest
        with SmbFileSource(UNC.format(name=name), credentials(samba)) as source:
            assert source.size == size
            assert read_like_the_engine(source, workers) == sha


def test_close_releases_every_connection(samba, small_file):
    name, _, sha = small_file
    before = samba.client_connections()
    source = SmbFileSource(UNC.format(name=name), credentials(samba))
    assert read_like_the_engine(source) == sha
    assert samba.client_connections() > before  # the pool's connections, one per thread that read
    source.close()
    assert samba.client_connections() == before
    with pytest.raises(TransportError, match="closed"):
        source.pread(0, 512)


def test_a_dropped_connection_is_replaced_and_the_read_resumes(samba, small_file):
    name, size, sha = small_file
    with SmbFileSource(UNC.format(name=name), credentials(samba)) as source:
        head = source.pread(0, size // 2)
        assert samba.drop_connections() >= 1  # what a reset of the connection does to the client
        tail = source.pread(size // 2, size)
        assert hashlib.sha256(head + tail).hexdigest() == sha


def test_a_read_that_fails_mid_file_names_the_file_and_the_offset(samba):
    path = samba.share / "VMs" / "shrinks.vhdx"
    path.write_bytes(os.urandom(3 * CHUNK))
    unc = UNC.format(name="shrinks.vhdx")
    with SmbFileSource(unc, credentials(samba)) as source:
        assert source.pread(0, CHUNK) == path.read_bytes()[:CHUNK]
        os.truncate(path, CHUNK + 1000)  # the server's file ends before the size the source was opened with
        with pytest.raises(TransportError) as failure:
            pread_into(source, memoryview(bytearray(CHUNK)), CHUNK)
    message = str(failure.value)
    assert message.startswith(f"{unc}: ") and f"offset {CHUNK + 1000}" in message and "\n" not in message


def test_a_server_that_is_gone_fails_the_read_naming_the_file_and_the_offset(tmp_path):
    with run_samba(tmp_path) as server:
        (server.share / "VMs" / "gone.vhdx").write_bytes(os.urandom(2 * CHUNK))
        unc = UNC.format(name="gone.vhdx")
        source = SmbFileSource(unc, credentials(server))
        assert len(source.pread(0, CHUNK)) == CHUNK
    with source, pytest.raises(TransportError, match=rf"^{re.escape(unc)}: read at offset {CHUNK} failed: "):
        source.pread(CHUNK, CHUNK)


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
def test_a_multi_gib_disk_reads_whole_with_the_engines_parallelism(samba, big_file, encrypt):
    name, size, sha = big_file
    for _ in range(2):
        smbclient.reset_connection_cache()
        with SmbFileSource(UNC.format(name=name), credentials(samba, encrypt=encrypt)) as source:
            assert source.size == size
            assert read_like_the_engine(source) == sha
