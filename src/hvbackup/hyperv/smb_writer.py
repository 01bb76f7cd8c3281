"""Write restored disk files onto a Hyper-V host over SMB (smbprotocol's smbclient), agentless.

Host paths map to shares as hyperv/smb.py maps them for reading: D:\\VMs\\x -> \\\\host\\D$\\VMs\\x (the
administrative share of the drive), a UNC path \\\\server\\share\\dir as given (docs/HYPERV.md §14).
A file is uploaded under `.NAME.hvbackup-partial`, flushed and closed, then renamed to its name;
SMB2's rename does not replace an existing file, so a restore never overwrites one. A failed upload
removes the partial file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvbackup.hyperv.errors import HyperVError
from hvbackup.hyperv.smb import SmbCredentials, map_smb_error, server_of, unc_path

UPLOAD_BLOCK = 8 * 1024 * 1024


def partial_name(unc: str) -> str:
    folder, _, name = unc.rpartition("\\")
    return f"{folder}\\.{name}.hvbackup-partial"


class SmbDiskWriter:
    """HyperVHost.disk_writer for a remote host: its folders through SMB shares."""

    def __init__(self, host: str, credentials: SmbCredentials) -> None:
        self.host = host
        self.credentials = credentials
        self._registered: set[str] = set()

    def _session(self, unc: str) -> dict[str, Any]:
        import smbclient

        login = {
            "username": self.credentials.username,
            "password": self.credentials.password,
            "port": self.credentials.port,
            "encrypt": self.credentials.encrypt,
            "connection_timeout": self.credentials.connection_timeout,
            "auth_protocol": self.credentials.auth_protocol,
        }
        server = server_of(unc)
        if server not in self._registered:
            smbclient.register_session(server, **login)
            self._registered.add(server)
        return login

    def unc(self, path: str) -> str:
        return unc_path(self.host, path)

    def exists(self, path: str) -> bool:
        import smbclient.path

        unc = self.unc(path)
        try:
            return bool(smbclient.path.exists(unc, **self._session(unc)))
        except Exception as exc:
            raise map_smb_error(exc, unc) from None

    def make_folder(self, path: str) -> None:
        import smbclient

        unc = self.unc(path)
        try:
            smbclient.makedirs(unc, exist_ok=True, **self._session(unc))
        except Exception as exc:
            raise map_smb_error(exc, unc) from None

    def local_folder(self, path: str) -> Path | None:
        return None

    def upload(self, local: Path, path: str) -> None:
        import smbclient

        unc = self.unc(path)
        partial = partial_name(unc)
        try:
            login = self._session(unc)
            if smbclient.path.exists(unc, **login):
                raise FileExistsError(f"{unc} exists")
            with (
                open(local, "rb", buffering=0) as source,
                smbclient.open_file(partial, mode="wb", buffering=0, **login) as target,
            ):
                _copy(source, target)
            smbclient.rename(partial, unc, **login)
        except BaseException as exc:
            self._remove_quietly(partial)
            if isinstance(exc, LocalReadError):
                raise exc.args[0] from None
            if isinstance(exc, (FileExistsError, HyperVError)) or not isinstance(exc, Exception):
                raise
            raise map_smb_error(exc, unc) from None

    def remove(self, path: str) -> None:
        self._remove_quietly(self.unc(path))

    def remove_folder(self, path: str) -> None:
        import smbclient

        unc = self.unc(path)
        try:
            smbclient.rmdir(unc, **self._session(unc))
        except Exception:  # gone, or holds files that are not ours
            pass

    def _remove_quietly(self, unc: str) -> None:
        import smbclient

        try:
            smbclient.remove(unc, **self._session(unc))
        except Exception:  # already gone, or the session is gone: nothing more to undo
            pass


class LocalReadError(Exception):
    """Reading the local file failed (not the SMB side): raised as the OSError it wraps."""


def _copy(source: Any, target: Any) -> None:
    buffer = bytearray(UPLOAD_BLOCK)
    view = memoryview(buffer)
    while True:
        try:
            n = source.readinto(buffer)
        except OSError as exc:
            raise LocalReadError(exc) from exc
        if not n:
            return
        done = 0
        while done < n:  # one SMB write carries at most the connection's max write size
            done += target.write(view[done:n])
