"""Run the scripts on a remote Hyper-V host over WinRM with PSRP (pypsrp).

One RunspacePool per host, opened on first use and reused for every call (pypsrp's Client
opens a new pool per call). Each call is a short script; WMI jobs that take longer are
polled by further short calls (see PowerShellHost), because WSMan has no whole-command
timeout and a pool can be unusable after a read timeout (jborean93/pypsrp#21, #145, #182):
after any transport failure the pool is dropped and opened again on the next call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests
from pypsrp import exceptions as psrp_errors
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from hvbackup.hyperv.errors import (
    AuthenticationError,
    HyperVError,
    OperationTimeout,
    TransportError,
    UnsupportedHost,
)
from hvbackup.hyperv.transport.base import Transport

AUTH_METHODS = ("kerberos", "ntlm", "negotiate", "certificate")
HTTPS_PORT = 5986
HTTP_PORT = 5985


@dataclass(frozen=True)
class PsrpOptions:
    host: str
    port: int = HTTPS_PORT
    ssl: bool = True
    auth: str = "negotiate"
    username: str | None = None
    password: str | None = None
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    cert_validation: bool | str = True
    connection_timeout: int = 30
    operation_timeout: int = 20
    read_timeout: int = 30
    configuration_name: str = "Microsoft.PowerShell"

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise TransportError(f"unknown WinRM authentication {self.auth!r}: use one of {', '.join(AUTH_METHODS)}")
        if self.auth == "certificate" and not (self.ssl and self.certificate_pem and self.certificate_key_pem):
            raise TransportError("certificate authentication needs HTTPS and both a certificate and a key file")
        if self.read_timeout <= self.operation_timeout:
            raise TransportError("the read timeout must be longer than the operation timeout (pypsrp README)")

    def wsman_arguments(self) -> dict[str, Any]:
        """Keyword arguments for pypsrp.wsman.WSMan."""
        args: dict[str, Any] = {
            "server": self.host,
            "port": self.port,
            "ssl": self.ssl,
            "auth": self.auth,
            "cert_validation": self.cert_validation,
            "connection_timeout": self.connection_timeout,
            "operation_timeout": self.operation_timeout,
            "read_timeout": self.read_timeout,
        }
        if self.auth == "certificate":
            args["certificate_pem"] = self.certificate_pem
            args["certificate_key_pem"] = self.certificate_key_pem
        else:
            args["username"] = self.username
            args["password"] = self.password
        return args


class PsrpTransport(Transport):
    def __init__(self, options: PsrpOptions, wsman_factory: Callable[..., WSMan] = WSMan) -> None:
        self.options = options
        self.host_name = options.host
        self._wsman_factory = wsman_factory
        self._pool: RunspacePool | None = None
        self._lock = threading.Lock()

    def run(self, script: str, timeout: float) -> str:
        with self._lock:
            try:
                return self._run(script, timeout)
            except HyperVError:
                raise
            except Exception as exc:
                self._drop_pool()
                raise map_error(exc, self.options.host) from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                try:
                    self._pool.close()
                except Exception:  # closing a broken pool: nothing left to release
                    pass
                self._pool = None

    def _open_pool(self) -> RunspacePool:
        if self._pool is None:
            wsman = self._wsman_factory(**self.options.wsman_arguments())
            pool = RunspacePool(wsman, configuration_name=self.options.configuration_name, no_profile=True)
            pool.open()
            self._pool = pool
        return self._pool

    def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.close()
            except Exception:  # the connection is already gone
                pass

    def _run(self, script: str, timeout: float) -> str:
        pool = self._open_pool()
        shell = PowerShell(pool)
        shell.add_script(script)
        shell.begin_invoke()
        deadline = time.monotonic() + timeout
        while shell.state == PSInvocationState.RUNNING:
            if time.monotonic() >= deadline:
                shell.stop()
                raise OperationTimeout(f"{self.options.host}: the script did not finish within {timeout:.0f} s")
            shell.poll_invoke()
        output = "\n".join(str(item) for item in shell.output if item is not None)
        if not output.strip() and shell.had_errors:
            first = shell.streams.error[0] if shell.streams.error else "unknown error"
            raise HyperVError(f"{self.options.host}: PowerShell failed: {first}")
        return output


def map_error(exc: BaseException, host: str) -> HyperVError:
    """A pypsrp/requests failure as a one-line typed error."""
    if isinstance(exc, ImportError):
        return UnsupportedHost(
            f"{host}: Kerberos needs the Python gssapi/krb5 packages (pip install 'pypsrp[kerberos]'"
            " with Debian's libkrb5-dev); use auth=ntlm over HTTPS meanwhile"
        )
    if isinstance(exc, psrp_errors.AuthenticationError):
        return AuthenticationError(f"{host}: authentication failed: {exc}")
    if isinstance(exc, psrp_errors.WinRMTransportError):
        if exc.code == 401:
            return AuthenticationError(f"{host}: the host refused the credentials (HTTP 401)")
        return TransportError(f"{host}: WinRM answered HTTP {exc.code}")
    if isinstance(exc, psrp_errors.WSManFaultError):
        return TransportError(f"{host}: WinRM fault {exc.code}: {str(exc.reason or '').strip()}")
    if isinstance(exc, requests.exceptions.SSLError):
        return TransportError(f"{host}: TLS failed (certificate not trusted?): {_first_line(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return OperationTimeout(f"{host}: no answer in time: {_first_line(exc)}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return TransportError(f"{host}: cannot connect: {_first_line(exc)}")
    if isinstance(exc, psrp_errors.WinRMError):
        return TransportError(f"{host}: {_first_line(exc)}")
    return TransportError(f"{host}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
