"""Read a Hyper-V host's disk files over SMB (smbprotocol's smbclient), agentless.

The frozen parent VHDX of a recovery checkpoint is still held open by the VM's worker
process, so the file is opened sharing read, write and delete: smbclient's default opens
exclusively and would clash with that handle (smbprotocol src/smbclient/_os.py docstring;
docs/HYPERV.md §6). Host paths are mapped to the administrative share of the drive
(C:\\VMs\\a.vhdx -> \\\\host\\C$\\VMs\\a.vhdx); UNC paths (VMs stored on SMB) are used as given.
"""

from __future__ import annotations

import errno
import re
import threading
from dataclasses import dataclass
from typing import Any

from hvbackup.hyperv.errors import AuthenticationError, HyperVError, ObjectNotFound, TransportError

SHARE_ACCESS = "rwd"
STATUS_SHARING_VIOLATION = 0xC0000043
STATUS_LOGON_FAILURE = 0xC000006D
STATUS_ACCESS_DENIED = 0xC0000022
# Session setups run one at a time: several at once in one process sometimes never got their
# answer (measured against samba, docs/HYPERV.md §16).
_SESSION_SETUP = threading.Lock()
_DRIVE_PATH = re.compile(r"^([A-Za-z]):[\\/](.*)$")


def unc_path(host: str, path: str) -> str:
    """The UNC path through which `host`'s file `path` is reached."""
    if path.startswith("\\\\") or path.startswith("//"):
        return "\\\\" + path[2:].replace("/", "\\")
    match = _DRIVE_PATH.match(path)
    if not match:
        raise ObjectNotFound(f"not an absolute Windows path: {path!r}")
    drive, rest = match.groups()
    return f"\\\\{host}\\{drive.upper()}$\\{rest.replace('/', chr(92))}"


def server_of(unc: str) -> str:
    parts = unc.lstrip("\\").split("\\")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        raise ObjectNotFound(f"not a UNC path to a file: {unc!r}")
    return parts[0]


@dataclass(frozen=True)
class SmbCredentials:
    username: str | None = None
    password: str | None = None
    auth_protocol: str = "negotiate"
    port: int = 445
    encrypt: bool | None = None
    connection_timeout: int = 30
    # Connections one source opens at most, one per reading thread (docs/HYPERV.md §16).
    max_connections: int = 8


@dataclass
class _Reader:
    """One connection (a connection cache of its own: TCP, session, tree) and its open handle."""

    cache: dict[str, Any]
    handle: Any


class SmbFileSource:
    """A ByteSource over one SMB file; pread and pread_into are thread-safe.

    A connection's credits are shared by every request on it, and smbclient sizes each read from
    the credits it sees before sending, so two threads on one connection overdraw them: reads come
    back short or fail (docs/HYPERV.md §16). So each thread in a read holds a connection of its own,
    taken from a pool of at most `max_connections`; a thread beyond that waits for a free one.
    """

    def __init__(self, unc: str, credentials: SmbCredentials) -> None:
        import smbclient

        self.name = unc
        self._session = {
            "username": credentials.username,
            "password": credentials.password,
            "port": credentials.port,
            "encrypt": credentials.encrypt,
            "connection_timeout": credentials.connection_timeout,
            "auth_protocol": credentials.auth_protocol,
        }
        self._limit = max(1, credentials.max_connections)
        self._readers: list[_Reader] = []
        self._free: list[_Reader] = []
        self._opening = 0
        self._closed = False
        self._changed = threading.Condition()
        try:
            reader = self._open_reader()
            self.size = int(smbclient.stat(unc, connection_cache=reader.cache, **self._session).st_size)
            self._give_back(reader)
        except Exception as exc:
            self.close()
            raise map_smb_error(exc, unc) from None

    def pread(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer only at the end of the file."""
        buffer = bytearray(max(0, min(length, self.size - offset)))
        self._fill(memoryview(buffer), offset)
        return bytes(buffer)

    def pread_into(self, buffer: memoryview, offset: int) -> None:
        """Fill `buffer` with the bytes at `offset`, or fail naming the offset."""
        if offset < 0 or offset + len(buffer) > self.size:
            raise TransportError(f"{self.name}: unexpected end of file at offset {max(offset, self.size)}")
        self._fill(buffer, offset)

    def _fill(self, buffer: memoryview, offset: int) -> None:
        """Read len(buffer) bytes; a short answer is continued, a lost connection replaced once."""
        done = empty_answers = 0
        replaced = False
        reader = self._take()
        try:
            while done < len(buffer):
                try:
                    reader.handle.seek(offset + done)
                    count = reader.handle.readinto(buffer[done:])
                except Exception as exc:
                    self._discard(reader)
                    if replaced or not _connection_lost(exc):
                        raise self._read_error(exc, offset + done) from None
                    replaced = True
                    reader = self._replacement(offset + done)
                    continue
                empty_answers = 0 if count else empty_answers + 1
                if empty_answers > 2:
                    raise TransportError(
                        f"{self.name}: the server sent no data at offset {offset + done} "
                        f"of a file of {self.size} bytes (did the file shrink?)"
                    )
                done += count
        except BaseException:
            self._discard(reader)
            raise
        self._give_back(reader)

    def _read_error(self, exc: BaseException, offset: int) -> HyperVError:
        mapped = map_smb_error(exc, self.name)
        if type(mapped) not in (TransportError, AuthenticationError, ObjectNotFound):
            return mapped
        detail = str(mapped).removeprefix(f"{self.name}: ")
        return type(mapped)(f"{self.name}: read at offset {offset} failed: {detail}")

    def _replacement(self, offset: int) -> _Reader:
        try:
            return self._take()
        except HyperVError as exc:
            raise self._read_error(exc, offset) from None

    def _take(self) -> _Reader:
        with self._changed:
            while True:
                if self._closed:
                    raise TransportError(f"{self.name}: the source is closed")
                if self._free:
                    return self._free.pop()
                if len(self._readers) + self._opening < self._limit:
                    self._opening += 1
                    break
                self._changed.wait()
        try:
            return self._open_reader()
        except Exception as exc:
            raise map_smb_error(exc, self.name) from None
        finally:
            with self._changed:
                self._opening -= 1
                self._changed.notify()

    def _open_reader(self) -> _Reader:
        import smbclient

        cache: dict[str, Any] = {}
        try:
            with _SESSION_SETUP:
                handle = smbclient.open_file(
                    self.name,
                    mode="rb",
                    buffering=0,
                    share_access=SHARE_ACCESS,
                    connection_cache=cache,
                    **self._session,
                )
        except BaseException:
            _disconnect(cache)
            raise
        reader = _Reader(cache, handle)
        with self._changed:
            closed = self._closed
            if not closed:
                self._readers.append(reader)
        if closed:
            _release(reader)
            raise TransportError(f"{self.name}: the source is closed")
        return reader

    def _give_back(self, reader: _Reader) -> None:
        with self._changed:
            if reader in self._readers:
                self._free.append(reader)
                self._changed.notify()

    def _discard(self, reader: _Reader) -> None:
        with self._changed:
            if reader not in self._readers:
                return
            self._readers.remove(reader)
            self._changed.notify()
        _release(reader)

    def close(self) -> None:
        """Close every handle and connection of this source, also those a thread is reading on."""
        with self._changed:
            self._closed = True
            readers, self._readers, self._free = self._readers, [], []
            self._changed.notify_all()
        for reader in readers:
            _release(reader)

    def __enter__(self) -> SmbFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _release(reader: _Reader) -> None:
    try:
        reader.handle.close()
    except Exception:  # the connection is already gone; nothing to release on the server
        pass
    _disconnect(reader.cache)


def _disconnect(cache: dict[str, Any]) -> None:
    import smbclient

    smbclient.reset_connection_cache(fail_on_error=False, connection_cache=cache)


def _connection_lost(exc: BaseException) -> bool:
    """A failure of the connection rather than an answer from the server: worth one new connection."""
    from smbprotocol import exceptions as smb_errors

    return not isinstance(exc, smb_errors.SMBResponseException | HyperVError)


class SmbDiskOpener:
    """open_disk_source for a remote host: host path -> UNC -> SmbFileSource."""

    def __init__(self, host: str, credentials: SmbCredentials) -> None:
        self.host = host
        self.credentials = credentials

    def __call__(self, path: str) -> SmbFileSource:
        return SmbFileSource(unc_path(self.host, path), self.credentials)


def map_smb_error(exc: BaseException, unc: str) -> HyperVError:
    from smbprotocol import exceptions as smb_errors

    if isinstance(exc, HyperVError):
        return exc
    if isinstance(exc, smb_errors.SMBAuthenticationError):
        return AuthenticationError(f"{unc}: SMB authentication failed: {_first_line(exc)}")
    if getattr(exc, "ntstatus", None) == STATUS_LOGON_FAILURE:  # smbclient's open wraps the session's answer
        return AuthenticationError(f"{unc}: SMB logon failed (user name or password wrong)")
    if getattr(exc, "ntstatus", None) == STATUS_SHARING_VIOLATION:
        return TransportError(f"{unc}: the file is open in another process that does not share it")
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        return ObjectNotFound(f"{unc}: no such file on the share")
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return AuthenticationError(f"{unc}: access denied (the account needs read access to the share)")
    if isinstance(exc, smb_errors.SMBResponseException) and exc.status == STATUS_LOGON_FAILURE:
        return AuthenticationError(f"{unc}: SMB logon failed (user name or password wrong)")
    if isinstance(exc, smb_errors.SMBResponseException) and exc.status == STATUS_ACCESS_DENIED:
        return AuthenticationError(f"{unc}: access denied (the account needs read access to the share)")
    if isinstance(exc, smb_errors.SMBResponseException):
        return TransportError(f"{unc}: SMB error {exc.status:#010x}: {_first_line(exc)}")
    if isinstance(exc, ValueError) and "Failed to connect" in str(exc):
        return TransportError(f"{unc}: cannot connect: {_first_line(exc)}")
    return TransportError(f"{unc}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
