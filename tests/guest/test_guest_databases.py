"""PostgreSQL and MariaDB from Debian packages, under a write load, frozen with and without quiescers.

Each test copies the loop image while frozen (as a host checkpoint would), then starts the database
on the copy and reads its log: the hooked copy recovers from the pre-freeze CHECKPOINT (PostgreSQL)
or needs no InnoDB crash recovery (MariaDB); the unhooked copy is only crash-consistent.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from guest_helpers import LoopFactory, LoopFs, run

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(300)]

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
MARIADBD = shutil.which("mariadbd") or shutil.which("mysqld", path="/usr/sbin")


@pytest.fixture
def open_loops() -> Iterator[LoopFactory]:
    """Loop filesystems under a directory the postgres user can traverse."""
    base = Path(tempfile.mkdtemp(prefix="hvb-db-"))
    base.chmod(0o755)
    factory = LoopFactory(base)
    try:
        yield factory
    finally:
        factory.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _freeze_copy_thaw(guest_cli, fs, state: Path, config: Path | None) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    args = ["--config", config] if config else []
    res = guest_cli(
        "freeze",
        "--json",
        "--state-dir",
        state,
        "--hooks-dir",
        state.parent / "no-hooks",
        "--mount",
        fs.mountpoint,
        *args,
    )
    assert res.returncode == 0, res.stderr
    copy = fs.image.with_name(fs.image.stem + ("-hooked" if config else "-plain") + ".img")
    shutil.copyfile(fs.image, copy)
    report = json.loads(guest_cli("thaw", "--json", "--state-dir", state).stdout)
    return copy, report


def _mount_copy(loops: LoopFactory, copy: Path) -> Path:
    return loops.attach(copy, "ext4", copy.with_suffix(".mnt")).mountpoint


# -- PostgreSQL --------------------------------------------------------------------------------
def _pg(bin_dir: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("runuser", "-u", "postgres", "--", f"{bin_dir}/{args[0]}", *args[1:], check=check)


def _pg_start(bin_dir: str, datadir: Path, sockdir: Path, port: int, log: Path) -> None:
    opts = f"-c listen_addresses='' -c unix_socket_directories={sockdir} -p {port}"
    res = _pg(bin_dir, "pg_ctl", "-D", datadir, "-o", opts, "-l", log, "-w", "-t", "60", "start", check=False)
    assert res.returncode == 0, res.stdout + res.stderr + (log.read_text() if log.exists() else "")


def _redo_range(log: str) -> tuple[str, str] | None:
    start = re.search(r"redo starts at ([0-9A-F/]+)", log)
    done = re.search(r"redo done at ([0-9A-F/]+)", log)
    return (start.group(1), done.group(1)) if start and done else None


def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


@dataclass
class PgRig:
    bin_dir: str
    fs: LoopFs
    sockdir: Path
    port: int
    config: Path  # guest.toml with the quiescer on, mode "checkpoint"
    state: Path


@contextmanager
def _postgres_under_load(open_loops: LoopFactory) -> Iterator[PgRig]:
    """A cluster on a loop ext4 with pgbench writing to it; stopped (not the copies) on the way out."""
    bin_dir = PG_BIN[-1]
    base = open_loops.base
    fs = open_loops.make("ext4", size_mb=256)
    datadir, sockdir = fs.mountpoint / "pgdata", base / "pgsock"
    for d in (datadir, sockdir):
        d.mkdir()
        shutil.chown(d, "postgres", "postgres")
    _pg(bin_dir, "initdb", "-D", datadir, "-A", "trust", "--no-sync")
    port = 54321 + os.getpid() % 1000
    _pg_start(bin_dir, datadir, sockdir, port, sockdir / "pg.log")
    load = None
    try:
        _pg(bin_dir, "pgbench", "-i", "-s", "2", "-h", sockdir, "-p", str(port), "postgres")
        load = subprocess.Popen(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                f"{bin_dir}/pgbench",
                "-n",
                "-c",
                "2",
                "-T",
                "120",
                "-h",
                str(sockdir),
                "-p",
                str(port),
                "postgres",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(2)
        config = base / "guest.toml"
        config.write_text(
            f'[postgresql]\nenabled = true\nhost = "{sockdir}"\nport = {port}\n'
            f'command = ["runuser", "-u", "postgres", "--", "{bin_dir}/psql"]\n'
        )
        yield PgRig(bin_dir, fs, sockdir, port, config, base / "state")
    finally:
        if load is not None:
            load.kill()
            load.wait()
        _pg(bin_dir, "pg_ctl", "-D", datadir, "-m", "fast", "stop", check=False)


@dataclass
class CopyStart:
    redo: str  # pg_controldata's "Latest checkpoint's REDO location" of the copy
    span: tuple[str, str] | None  # redo starts at / redo done at, from the server log
    rows: int
    log: str


def _start_copy(rig: PgRig, loops: LoopFactory, copy: Path, name: str) -> CopyStart:
    """Mount a frozen copy, start PostgreSQL on it (another port), count the rows, stop it."""
    copy_dir = _mount_copy(loops, copy) / "pgdata"
    control = _pg(rig.bin_dir, "pg_controldata", copy_dir).stdout
    redo = re.search(r"Latest checkpoint's REDO location:\s+(\S+)", control).group(1)  # type: ignore[union-attr]
    log = rig.sockdir / f"{name}.log"
    (copy_dir / "postmaster.pid").unlink(missing_ok=True)  # the live server's pid: stale in a restored VM
    _pg_start(rig.bin_dir, copy_dir, rig.sockdir, rig.port + 1, log)
    rows = _pg(
        rig.bin_dir,
        "psql",
        "-At",
        "-h",
        rig.sockdir,
        "-p",
        str(rig.port + 1),
        "-d",
        "postgres",
        "-c",
        "SELECT count(*) FROM pgbench_accounts",
    ).stdout.strip()
    _pg(rig.bin_dir, "pg_ctl", "-D", copy_dir, "-m", "fast", "stop")
    text = log.read_text()
    return CopyStart(redo, _redo_range(text), int(rows), text)


@pytest.mark.skipif(not PG_BIN, reason="PostgreSQL server is not installed (Debian package postgresql)")
def test_postgresql_hooked_copy_recovers_from_the_pre_freeze_checkpoint(open_loops: LoopFactory, guest_cli) -> None:  # type: ignore[no-untyped-def]
    with _postgres_under_load(open_loops) as rig:
        plain, plain_report = _freeze_copy_thaw(guest_cli, rig.fs, rig.state, None)
        hooked, report = _freeze_copy_thaw(guest_cli, rig.fs, rig.state, rig.config)
    assert report["consistency"] == "application", report
    assert plain_report["consistency"] == "filesystem"
    checkpoint = report["quiescers"][0]["checkpoint_redo_lsn"]
    results = {name: _start_copy(rig, open_loops, copy, name) for name, copy in (("hooked", hooked), ("plain", plain))}
    print(
        f"postgresql: hooked freeze {report['frozen_seconds']} s, plain freeze {plain_report['frozen_seconds']} s; "
        f"redo hooked {results['hooked'].span}, plain {results['plain'].span}"
    )
    assert results["hooked"].redo == checkpoint  # recovery starts at the CHECKPOINT taken just before the freeze
    assert _lsn(results["plain"].redo) < _lsn(checkpoint)  # the unhooked copy starts from an older checkpoint
    hooked_redo = results["hooked"].span
    plain_redo = results["plain"].span
    assert plain_redo is not None  # crash recovery replays the load since the last automatic checkpoint
    hooked_bytes = 0 if hooked_redo is None else _lsn(hooked_redo[1]) - _lsn(hooked_redo[0])
    assert hooked_bytes < _lsn(plain_redo[1]) - _lsn(plain_redo[0])
    assert results["hooked"].rows == results["plain"].rows == 200000
    for copy in results.values():  # every copy, hooked or not, is a crash recovery to PostgreSQL (docs/GUEST.md)
        assert "not properly shut down; automatic recovery in progress" in copy.log


@pytest.mark.skipif(not PG_BIN, reason="PostgreSQL server is not installed (Debian package postgresql)")
def test_postgresql_backup_mode_reports_the_lsn_the_copys_redo_starts_at(open_loops: LoopFactory, guest_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 12: in backup mode the report's checkpoint_redo_lsn was the CHECKPOINT before
    pg_backup_start, but the copy recovers from pg_backup_start's own checkpoint (start_lsn)."""
    with _postgres_under_load(open_loops) as rig:
        backup_config = rig.config.with_name("backup.toml")
        backup_config.write_text(rig.config.read_text().replace("enabled = true", 'enabled = true\nmode = "backup"'))
        copy, report = _freeze_copy_thaw(guest_cli, rig.fs, rig.state, backup_config)
    assert report["consistency"] == "application", report
    quiescer = report["quiescers"][0]
    label = quiescer["backup_label"]
    assert "START WAL LOCATION" in label and "LABEL: hvbackup" in label
    assert f"START WAL LOCATION: {quiescer['start_lsn']} " in label
    labelled = copy.with_name("labelled.img")
    shutil.copyfile(copy, labelled)  # a second, untouched copy of the same frozen image
    started = _start_copy(rig, open_loops, copy, "backup-mode")  # started as it was copied: no backup_label
    assert started.redo == quiescer["checkpoint_redo_lsn"] == quiescer["start_lsn"]
    assert started.rows == 200000
    assert _lsn(quiescer["stop_lsn"]) >= _lsn(quiescer["start_lsn"])
    # what docs/GUEST.md warns about: the label without archived WAL stops the copy from starting
    labelled_dir = _mount_copy(open_loops, labelled) / "pgdata"
    (labelled_dir / "backup_label").write_text(label)
    shutil.chown(labelled_dir / "backup_label", "postgres", "postgres")
    (labelled_dir / "postmaster.pid").unlink(missing_ok=True)
    log = rig.sockdir / "labelled.log"
    opts = f"-c listen_addresses='' -c unix_socket_directories={rig.sockdir} -p {rig.port + 2}"
    res = _pg(rig.bin_dir, "pg_ctl", "-D", labelled_dir, "-o", opts, "-l", log, "-w", "-t", "60", "start", check=False)
    assert res.returncode != 0
    assert "WAL ends before end of online backup" in log.read_text()


# -- MariaDB -----------------------------------------------------------------------------------
class Mariadb:
    def __init__(self, datadir: Path, rundir: Path, name: str) -> None:
        self.datadir, self.socket = datadir, rundir / f"{name}.sock"
        self.pidfile, self.errlog = rundir / f"{name}.pid", rundir / f"{name}.err"

    def start(self) -> None:
        subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                "--skip-networking",
                f"--pid-file={self.pidfile}",
                f"--log-error={self.errlog}",
                "--innodb-log-file-size=16M",
                "--innodb-buffer-pool-size=64M",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(300):
            if run("mariadb", f"--socket={self.socket}", "-e", "SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"mariadbd did not start: {self.errlog.read_text()[-2000:]}")

    def sql(self, query: str) -> str:
        return run("mariadb", f"--socket={self.socket}", "--batch", "--skip-column-names", "-e", query).stdout

    def stop(self) -> None:
        run("mariadb-admin", f"--socket={self.socket}", "shutdown", check=False)
        for _ in range(300):
            if not self.pidfile.exists():
                return
            time.sleep(0.1)


@pytest.mark.skipif(MARIADBD is None, reason="MariaDB server is not installed (Debian package mariadb-server)")
def test_mariadb_hooked_copy_needs_no_innodb_recovery(open_loops: LoopFactory, guest_cli) -> None:  # type: ignore[no-untyped-def]
    base = open_loops.base
    fs = open_loops.make("ext4", size_mb=256)
    datadir = fs.mountpoint / "mysql"
    run(
        "mariadb-install-db",
        "--no-defaults",
        "--user=root",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
    )
    server = Mariadb(datadir, base, "live")
    server.start()
    load = None
    try:
        server.sql(
            "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB"
        )
        load = subprocess.Popen(
            [
                "sh",
                "-c",
                f"while true; do echo \"INSERT INTO t(v) VALUES (REPEAT('x',150));\"; "
                f"done | mariadb --socket={server.socket} app",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(2)
        config = base / "guest.toml"
        config.write_text(f'[mariadb]\nenabled = true\nsocket = "{server.socket}"\n')
        state = base / "state"
        plain, plain_report = _freeze_copy_thaw(guest_cli, fs, state, None)
        hooked, report = _freeze_copy_thaw(guest_cli, fs, state, config)
        assert int(server.sql("SELECT count(*) FROM app.t")) > 0
    finally:
        if load is not None:
            os.killpg(load.pid, 9)
            load.wait()
        server.stop()
    assert report["consistency"] == "application", report
    assert report["quiescers"][0]["innodb_checkpointed"] is True
    logs = {}
    for name, copy in (("hooked", hooked), ("plain", plain)):
        copy_server = Mariadb(_mount_copy(open_loops, copy) / "mysql", base, name)
        copy_server.start()
        rows = int(copy_server.sql("SELECT count(*) FROM app.t"))
        copy_server.stop()
        logs[name] = copy_server.errlog.read_text()
        assert rows > 0
    print(
        f"mariadb: hooked freeze {report['frozen_seconds']} s (quiesce "
        f"{report['quiescers'][0]['seconds']} s), plain freeze {plain_report['frozen_seconds']} s"
    )
    assert "crash recovery" not in logs["hooked"], logs["hooked"]
    assert "crash recovery" in logs["plain"]  # the unhooked copy is merely crash-consistent
