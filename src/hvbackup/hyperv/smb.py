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


class SmbFileSource:
    """A ByteSource over one SMB file. pread is thread-safe: each thread reads through its own
    handle (twice the throughput of one shared handle from four threads, see docs/HYPERV.md)."""

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
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        try:
            smbclient.register_session(server_of(unc), **self._session)
            self._handle()
            # Every call names the port again: smbclient looks sessions up by server and port.
            self.size = int(smbclient.stat(unc, **self._session).st_size)
        except Exception as exc:
            self.close()
            raise map_smb_error(exc, unc) from None

    def _handle(self) -> Any:
        handle = getattr(self._local, "handle", None)
        if handle is None:
            import smbclient

            handle = smbclient.open_file(self.name, mode="rb", buffering=0, share_access=SHARE_ACCESS, **self._session)
            self._local.handle = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def pread(self, offset: int, length: int) -> bytes:
        try:
            handle = self._handle()
            handle.seek(offset)
            return handle.read(length) or b""
        except Exception as exc:
            raise map_smb_error(exc, self.name) from None

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            try:
                handle.close()
            except Exception:  # the session is already gone; nothing to release
                pass

    def __enter__(self) -> SmbFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
