"""A database session held open through a command-line client (psql, mariadb) on a stdin pipe.

Each statement is followed by a marker the client echoes back, so we know when the statement has
finished without parsing the client's output. When the client's stdin closes (or the agent dies),
the session ends and the server drops its locks.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from hvbackup.errors import HvBackupError


class QuiesceError(HvBackupError):
    """A database could not be quiesced (or released)."""


class ClientSession:
    def __init__(self, argv: list[str], marker_sql: str, timeout: float) -> None:
        self._marker_sql = marker_sql
        self._timeout = timeout
        self._count = 0
        self._buffer = b""
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise QuiesceError(f"cannot start {argv[0]}: {exc.strerror}") from None

    def run(self, sql: str) -> str:
        """Send one statement and return the client's output for it."""
        self._count += 1
        marker = f"hvbackup-done-{self._count}"
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{sql}\n{self._marker_sql.format(marker=marker)}\n".encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise QuiesceError(f"client ended: {self._drain()}") from None
        return self._read_until(marker)

    def _read_until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self._timeout
        token = marker.encode()
        while token not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QuiesceError(f"no answer within {self._timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise QuiesceError(f"client ended: {self._buffer.decode(errors='replace').strip()[-300:]}")
                self._buffer += chunk
        head, _, tail = self._buffer.partition(token)
        self._buffer = tail.split(b"\n", 1)[1] if b"\n" in tail else b""
        return head.decode(errors="replace")

    def _drain(self) -> str:
        return self._buffer.decode(errors="replace").strip()[-300:]

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@dataclass
class Quiescer:
    """prepare() runs before the freeze, release() after the thaw; the verdict goes into the report."""

    name: str = "quiescer"
    verdict: str = "skipped"  # quiesced | failed | skipped
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def prepare(self) -> bool:
        start = time.monotonic()
        try:
            self._prepare()
            self.verdict = "quiesced"
        except QuiesceError as exc:
            self.verdict, self.error = "failed", str(exc)
            self._abort()
        self.seconds = time.monotonic() - start
        return self.verdict == "quiesced"

    def release(self) -> None:
        if self.verdict != "quiesced":
            return
        try:
            self._release()
        except QuiesceError as exc:
            self.error = f"release: {exc}"

    def _prepare(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        """Drop any session left after a failed prepare."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            **self.detail,
        }
