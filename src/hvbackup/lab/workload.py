"""The running lab VM's guest: a background process that keeps writing to its disks.

    python -m hvbackup.lab.workload [--detach] VM_FOLDER

Every ~50 ms, under the VM's I/O lock, it re-reads vm.json, overwrites a few 4 KiB records in the
VM's writable guest files through the top of each disk chain (so a checkpoint switches its writes
to the new AVHDX at once), records each range in change tracking, and serves the application's
flush requests (app.py). It exits as soon as vm.json says the VM is not Running, names another
workload, or is gone; a requested shutdown makes it write a clean state and turn the VM Off.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from pathlib import Path

from hvbackup.errors import HvBackupError
from hvbackup.hyperv.enums import VMState
from hvbackup.lab import app
from hvbackup.lab.folder import VmFolder
from hvbackup.lab.guestio import Writers, write_file
from hvbackup.lab.record import VmRecord

INTERVAL = 0.05
WRITES_PER_BATCH = 3
MODULE = "hvbackup.lab.workload"


class Workload:
    def __init__(self, folder: VmFolder) -> None:
        self.folder = folder
        self.rng = random.Random(os.getpid())
        self.writers = Writers()
        self.flush = app.FlushChannel(folder.guest_dir)
        self.seq = 0
        self.state_written = 0.0
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        try:
            while not self.stopping and self.batch():
                time.sleep(INTERVAL)
        finally:
            self.writers.close()

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def batch(self) -> bool:
        """One write batch; False when the VM is no longer ours to run."""
        if not self.folder.exists():
            return False
        try:
            with self.folder.io() as record:
                if record.model.state != VMState.Running or record.workload_pid != os.getpid():
                    return False
                if record.shutdown_requested:
                    self._shut_down(record)
                    return False
                self._write_data(record)
                self._serve_application(record)
                self.writers.flush()
                return True
        except (HvBackupError, OSError):
            return False

    def _write_data(self, record: VmRecord) -> None:
        files = [w for w in record.writable if w.path != app.STATE_FILE and w.size >= app.RECORD_SIZE]
        for _ in range(WRITES_PER_BATCH if files else 0):
            target = self.rng.choice(files)
            slot = self.rng.randrange(target.size // app.RECORD_SIZE)
            self.seq += 1
            write_file(
                self.folder, record, target, slot * app.RECORD_SIZE, app.data_record(self.seq, self.rng), self.writers
            )

    def _serve_application(self, record: VmRecord) -> None:
        token = self.flush.pending_token()
        if token is not None:
            self._write_state(record, {"seq": self.seq, "clean": True, "flushed_for": token})
            self.flush.answer(token, self.seq)
        elif not self.flush.in_backup_mode() and time.monotonic() - self.state_written >= app.STATE_EVERY:
            self._write_state(record, {"seq": self.seq, "clean": False})

    def _write_state(self, record: VmRecord, state: dict) -> None:
        target = record.writable_file(app.STATE_FILE)
        if target is not None:
            write_file(self.folder, record, target, 0, app.encode_state(state), self.writers)
        self.state_written = time.monotonic()

    def _shut_down(self, record: VmRecord) -> None:
        """A clean guest shutdown: the application writes its final state, then the VM is Off."""
        self._write_state(record, {"seq": self.seq, "clean": True, "shutdown": True})
        self.writers.flush()
        record.set(state=VMState.Off)
        record.workload_pid = None
        record.shutdown_requested = False
        record.save()


def _detach() -> None:
    """Leave the caller: the parent prints the child's pid and exits; the child runs in its own session."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        os.read(read_end, 1)  # the child has started its session
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()
        os._exit(0)
    os.close(read_end)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.write(write_end, b"x")
    os.close(write_end)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MODULE)
    parser.add_argument("--detach", action="store_true")
    parser.add_argument("folder", type=Path, help="the VM folder (DIR/vms/NAME)")
    args = parser.parse_args(argv)
    if args.detach:
        _detach()
    Workload(VmFolder(args.folder.resolve())).run()


if __name__ == "__main__":
    main()
