"""The KVP pool files as hv_kvp_daemon keeps them: layout, locking, and the agent's publications."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hvbackup import kvpreport
from hvbackup.guest import kvp
from hvbackup.guest.kvp import POOL_EXTERNAL, POOL_GUEST, PoolError, pool_path, read_pool, update_pool

# struct kvp_record { char key[HV_KVP_EXCHANGE_MAX_KEY_SIZE]; char value[HV_KVP_EXCHANGE_MAX_VALUE_SIZE]; }
C_RECORD = struct.Struct("512s2048s")


def _c_pool(path: Path, records: list[tuple[bytes, bytes]]) -> None:
    path.write_bytes(b"".join(C_RECORD.pack(k, v) for k, v in records))


def test_a_pool_written_in_the_daemons_layout_reads_back(tmp_path: Path) -> None:
    _c_pool(pool_path(tmp_path, POOL_EXTERNAL), [(b"HvBackupRequest", b"abc123"), (b"Empty", b"")])
    assert read_pool(tmp_path, POOL_EXTERNAL) == {"HvBackupRequest": "abc123", "Empty": ""}
    assert kvp.host_item(tmp_path, "HvBackupRequest") == "abc123"


def test_what_we_write_is_the_daemons_layout_and_keeps_other_records(tmp_path: Path) -> None:
    path = pool_path(tmp_path, POOL_GUEST)
    _c_pool(path, [(b"cloud-init", b"done"), (b"gone", b"x")])
    update_pool(tmp_path, POOL_GUEST, {"mine": "v1", "cloud-init": "again"}, delete=["gone"])
    data = path.read_bytes()
    assert len(data) == 2 * 2560
    records = [C_RECORD.unpack_from(data, i) for i in range(0, len(data), 2560)]
    assert [(k.rstrip(b"\0"), v.rstrip(b"\0")) for k, v in records] == [(b"cloud-init", b"again"), (b"mine", b"v1")]


def test_a_partial_trailing_record_is_ignored_as_the_daemon_does(tmp_path: Path) -> None:
    _c_pool(pool_path(tmp_path, POOL_GUEST), [(b"a", b"1")])
    with pool_path(tmp_path, POOL_GUEST).open("ab") as fh:
        fh.write(b"b" * 100)
    assert read_pool(tmp_path, POOL_GUEST) == {"a": "1"}


@pytest.mark.parametrize(("key", "value"), [("", "v"), ("k" * 512, "v"), ("k", "v" * 2048), ("k", "a\0b")])
def test_an_item_that_does_not_fit_a_record_is_refused_before_the_file_changes(
    tmp_path: Path, key: str, value: str
) -> None:
    update_pool(tmp_path, POOL_GUEST, {"keep": "me"})
    before = pool_path(tmp_path, POOL_GUEST).read_bytes()
    with pytest.raises(PoolError):
        update_pool(tmp_path, POOL_GUEST, {key: value})
    assert pool_path(tmp_path, POOL_GUEST).read_bytes() == before


def _hold_daemon_lock(path: Path, seconds: float, record: tuple[str, str]) -> subprocess.Popen[bytes]:
    """A process that locks the pool as hv_kvp_daemon does (F_WRLCK, whole file, F_SETLKW) and writes a record."""
    code = textwrap.dedent(f"""
        import fcntl, os, struct, sys, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.fcntl(fd, fcntl.F_SETLKW, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        sys.stdout.write("locked\\n"); sys.stdout.flush()
        time.sleep({seconds})
        data = open({str(path)!r}, "rb").read()
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data + struct.pack("512s2048s", {record[0].encode()!r}, {record[1].encode()!r}))
        os.close(fd)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
    return proc


def test_a_writer_waits_for_the_daemons_lock_and_loses_nothing(tmp_path: Path) -> None:
    path = pool_path(tmp_path, POOL_GUEST)
    path.touch()
    daemon = _hold_daemon_lock(path, 0.5, ("daemon", "wrote"))
    started = time.monotonic()
    update_pool(tmp_path, POOL_GUEST, {"agent": "wrote"})
    assert time.monotonic() - started >= 0.4, "the write must wait for the lock"
    daemon.wait(timeout=10)
    assert read_pool(tmp_path, POOL_GUEST) == {"daemon": "wrote", "agent": "wrote"}


def test_concurrent_publications_are_never_read_torn(tmp_path: Path) -> None:
    """Two processes republish while this one reads: every read is one whole publication."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from hvbackup.guest import kvp
        for i in range(60):
            pad = "z" * (4000 * (i % 13))
            kvp.publish(Path({str(tmp_path)!r}), "Freeze", {{"writer": sys.argv[1], "i": i, "pad": pad}})
    """)
    writers = [subprocess.Popen([sys.executable, "-c", code, name]) for name in ("a", "b")]
    reads = 0
    while any(w.poll() is None for w in writers):
        found = kvp.published(tmp_path, kvpreport.FREEZE)  # raises TornReport if a read saw a half-written pool
        reads += found is not None
    assert all(w.wait() == 0 for w in writers)
    final = kvp.published(tmp_path, kvpreport.FREEZE)
    assert final is not None and final.report["i"] == 59
    assert reads > 0


def test_a_shorter_publication_removes_the_parts_of_a_longer_one(tmp_path: Path) -> None:
    kvp.publish(tmp_path, kvpreport.READINESS, {"pad": "x" * 5000})
    kvp.publish(tmp_path, kvpreport.READINESS, {"pad": "short"})
    keys = [k for k in read_pool(tmp_path, POOL_GUEST) if k.startswith("HvBackup.Readiness")]
    assert sorted(keys) == ["HvBackup.Readiness", "HvBackup.Readiness.0"]
    found = kvp.published(tmp_path, kvpreport.READINESS)
    assert found is not None and found.report == {"pad": "short"}
