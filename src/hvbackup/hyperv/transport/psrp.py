"""Run the scripts on a remote Hyper-V host over WinRM with PSRP (pypsrp).

One RunspacePool per host, opened on first use and reused for every call (pypsrp's Client
opens a new pool per call). Each call is a short script; WMI jobs that take longer are
polled by further short calls (see PowerShellHost), because WSMan has no whole-command
timeout and a pool can be unusable after a read timeout (jborean93/pypsrp#21, #145, #182).

What WinRM does to a long-lived pool (docs/HYPERV.md §15): every pipeline is one WSMan command
that stays counted against MaxConcurrentCommandsPerShell until it is terminated, so each call
closes its pipeline (pypsrp#148); the service forgets a shell left idle (IdleTimeout, pypsrp#21),
so a pool unused for `pool_idle_check` seconds is checked before use and reopened when dead, and
a call that failed before its pipeline started on a reused pool is run once more on a new pool.
A call whose script had (or may have) started is never run again: the script may have done its
work (a checkpoint must not be taken twice).
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions as urllib3_errors
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

PASSWORD_ENV = "HVBACKUP_HYPERV_PASSWORD"
AUTH_METHODS = ("kerberos", "ntlm", "negotiate", "certificate")
HTTPS_PORT = 5986
HTTP_PORT = 5985
# Seconds a pool may sit unused before its health is checked: WinRM forgets idle shells after its
# IdleTimeout (at least 60 s, 180 s by default) and pypsrp#21 saw pools go after 2-3 idle minutes.
POOL_IDLE_CHECK = 30.0
HEALTH_CHECK_TIMEOUT = 10


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
    pool_idle_check: float = POOL_IDLE_CHECK

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


class _NotStarted(Exception):
    """The call failed before its pipeline started on the host: running it again is safe."""


class _Started(Exception):
    """The call failed after its script had (or may have) started: it must not run again."""

    def __init__(self, cause: BaseException, certain: bool) -> None:
        super().__init__(cause)
        self.cause, self.certain = cause, certain


class PsrpTransport(Transport):
    def __init__(self, options: PsrpOptions, wsman_factory: Callable[..., WSMan] = WSMan) -> None:
        self.options = options
        self.host_name = options.host
        self._wsman_factory = wsman_factory
        self._pool: RunspacePool | None = None
        self._last_used = 0.0
        self._lock = threading.Lock()

    def run(self, script: str, timeout: float) -> str:
        with self._lock:
            try:
                return self._run_once_more_if_not_started(script, timeout)
            except HyperVError:
                raise
            except _Started as failure:
                self._drop_pool()
                raise self._not_run_again(failure) from None
            except _NotStarted as failure:
                self._drop_pool()
                raise map_error(failure.__cause__ or failure, self.options) from None
            except Exception as exc:
                self._drop_pool()
                raise map_error(exc, self.options) from None

    def close(self) -> None:
        with self._lock:
            self._drop_pool()

    def _run_once_more_if_not_started(self, script: str, timeout: float) -> str:
        kept = self._pool
        pool = self._usable_pool()
        try:
            return self._run(pool, script, timeout)
        except _NotStarted:
            if pool is not kept:  # a pool opened for this call: the refusal is the host's answer
                raise
            # A reused pool the host had dropped (idle timeout, restarted service): a new pool,
            # one more time (docs/HYPERV.md §15).
            self._drop_pool()
            return self._run(self._usable_pool(), script, timeout)

    def _usable_pool(self) -> RunspacePool:
        """The open pool, checked first when it has been idle; a new pool when there is none or it died."""
        idle = time.monotonic() - self._last_used
        if self._pool is not None and idle >= self.options.pool_idle_check and not self._is_alive(self._pool):
            self._drop_pool()
        if self._pool is None:
            wsman = self._wsman_factory(**self.options.wsman_arguments())
            pool = RunspacePool(wsman, configuration_name=self.options.configuration_name, no_profile=True)
            self._pool = pool
            pool.open()
        return self._pool

    @staticmethod
    def _is_alive(pool: RunspacePool) -> bool:
        try:
            return pool.is_alive(timeout=HEALTH_CHECK_TIMEOUT)
        except Exception:  # any other fault or failure: the pool cannot be trusted either
            return False

    def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # Delete the shell even when is_alive has marked the pool closed: it may only have
            # lost its HTTP connection, and a shell left behind counts against MaxShellsPerUser.
            pool.shell.close()
        except Exception:  # the connection or the shell is already gone
            pass
        try:
            pool.connection.close()
        except Exception:  # nothing left to release
            pass

    def _run(self, pool: RunspacePool, script: str, timeout: float) -> str:
        shell = PowerShell(pool)
        shell.add_script(script)
        try:
            self._start(shell)
            return self._output(shell, timeout)
        finally:
            self._last_used = time.monotonic()
            self._close_pipeline(shell)

    @staticmethod
    def _start(shell: PowerShell) -> None:
        try:
            shell.begin_invoke()
        except Exception as exc:
            if shell.state == PSInvocationState.NOT_STARTED and _refused_or_never_sent(exc):
                raise _NotStarted() from exc
            raise _Started(exc, certain=shell.state != PSInvocationState.NOT_STARTED) from exc

    def _output(self, shell: PowerShell, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        try:
            while shell.state == PSInvocationState.RUNNING:
                if time.monotonic() >= deadline:
                    shell.stop()
                    raise OperationTimeout(f"{self.options.host}: the script did not finish within {timeout:.0f} s")
                shell.poll_invoke()
        except HyperVError:
            raise
        except Exception as exc:
            raise _Started(exc, certain=True) from exc
        output = "\n".join(str(item) for item in shell.output if item is not None)
        if not output.strip() and shell.had_errors:
            first = shell.streams.error[0] if shell.streams.error else "unknown error"
            raise HyperVError(f"{self.options.host}: PowerShell failed: {first}")
        return output

    def _close_pipeline(self, shell: PowerShell) -> None:
        """Terminate the pipeline's WSMan command, so it no longer counts against the shell's
        MaxConcurrentCommandsPerShell (docs/HYPERV.md §15); a pool that cannot do that is dropped."""
        if shell.state not in (PSInvocationState.COMPLETED, PSInvocationState.STOPPED, PSInvocationState.FAILED):
            return
        try:
            shell.close()
        except Exception:  # the command may still be open on the host: start afresh next time
            self._drop_pool()

    def _not_run_again(self, failure: _Started) -> TransportError:
        where = f"{_bracketed(self.options.host)}:{self.options.port}"
        when = "after the script had started" if failure.certain else "while the script was being started"
        detail = map_error(failure.cause, self.options)
        if isinstance(detail, OperationTimeout):
            return OperationTimeout(
                f"{detail} {when}; it is not run again, because the host may have done its work"
                " and a step such as taking a checkpoint must not happen twice"
            )
        return TransportError(
            f"{where}: the connection failed {when} ({_lost_connection(failure.cause)});"
            " it is not run again, because the host may have done its work and a step such as taking a"
            " checkpoint must not happen twice"
        )


def _lost_connection(exc: BaseException) -> str:
    """What became of the connection, from the innermost error that requests and urllib3 wrap."""
    causes = list(_causes(exc))
    if any(isinstance(c, (ConnectionResetError, http.client.RemoteDisconnected)) for c in causes):
        return "the host closed the connection without answering"
    innermost = next((c for c in reversed(causes) if isinstance(c, (OSError, http.client.HTTPException))), exc)
    return f"{type(innermost).__name__}: {_first_line(innermost)}"


def _refused_or_never_sent(exc: BaseException) -> bool:
    """True when the host answered the Command with an error, or the request never left this machine."""
    if isinstance(exc, (psrp_errors.WSManFaultError, psrp_errors.WinRMTransportError, psrp_errors.AuthenticationError)):
        return True
    never_sent = (
        ConnectionRefusedError,
        socket.gaierror,
        urllib3_errors.ConnectTimeoutError,
    )  # incl. NewConnectionError
    return any(isinstance(cause, never_sent) for cause in _causes(exc))


def map_error(exc: BaseException, options: PsrpOptions) -> HyperVError:
    """A pypsrp/requests/urllib3 failure in plain words: what failed, on which host:port, what to check."""
    where = f"{_bracketed(options.host)}:{options.port}"
    if isinstance(exc, ImportError):
        return UnsupportedHost(
            f"{options.host}: Kerberos needs the Python gssapi/krb5 packages (pip install 'pypsrp[kerberos]'"
            " with Debian's libkrb5-dev); use auth=ntlm over HTTPS meanwhile"
        )
    if isinstance(exc, psrp_errors.AuthenticationError):
        return _authentication_failed(exc, options, where)
    if isinstance(exc, psrp_errors.WinRMTransportError):
        if exc.code == 401:
            return _authentication_failed(exc, options, where)
        return _http_status(exc.code, where)
    if isinstance(exc, psrp_errors.WSManFaultError):
        return TransportError(f"{where}: WinRM fault {exc.code}: {str(exc.reason or '').strip()}")
    causes = list(_causes(exc))
    connection = _connection_failure(causes, options, where)
    if connection is not None:
        return connection
    if isinstance(exc, psrp_errors.WinRMError):
        return TransportError(f"{where}: {_first_line(exc)}")
    return TransportError(f"{where}: {type(exc).__name__}: {_first_line(causes[-1])}")


def _connection_failure(causes: list[BaseException], options: PsrpOptions, where: str) -> HyperVError | None:
    """Refused, not resolved, TLS, timed out, reset: read from the innermost errors urllib3 wraps."""
    listener = f"WinRM {'HTTPS' if options.ssl else 'HTTP'} listener"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TransportError(_certificate_message(cause, options, where))
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return TransportError(
                f"TLS handshake with {where} failed ({cause.reason or _first_line(cause)}): is that port the {listener}?"
                " (ssl=0 for an HTTP listener; see docs/HYPERV.md)"
            )
        if isinstance(cause, socket.gaierror):
            return TransportError(
                f"cannot resolve the host name {options.host!r}: check the name or DNS (see docs/HYPERV.md)"
            )
        if isinstance(cause, ConnectionRefusedError):
            return TransportError(f"connection refused on {where} (is the {listener} on? see docs/HYPERV.md)")
        if isinstance(
            cause, (requests.exceptions.ConnectTimeout, urllib3_errors.ConnectTimeoutError)
        ) and not isinstance(cause, urllib3_errors.NewConnectionError):
            return OperationTimeout(
                f"connection to {where} timed out after {options.connection_timeout} s"
                " (host down, or a firewall dropping the port? see docs/HYPERV.md)"
            )
        if isinstance(cause, (requests.exceptions.ReadTimeout, urllib3_errors.ReadTimeoutError)):
            return OperationTimeout(
                f"{where} accepted the connection but sent no answer within {options.read_timeout} s"
            )
        if isinstance(cause, (ConnectionResetError, http.client.RemoteDisconnected)):
            return TransportError(f"{where} closed the connection without answering (is that port the {listener}?)")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return TransportError(f"no route to {where}: {cause.strerror}")
    return None


def _certificate_message(cause: ssl.SSLCertVerificationError, options: PsrpOptions, where: str) -> str:
    reason = str(cause.verify_message or cause.reason or "not trusted").rstrip(".")
    if "mismatch" in reason:
        return (
            f"TLS verification failed: the certificate of {where} is not issued to {options.host!r} ({reason}):"
            " connect by the name the certificate carries (see docs/HYPERV.md)"
        )
    return (
        f"TLS verification failed: the certificate of {where} is not trusted ({reason}):"
        " give its CA as verify=/path/ca.pem in the host spec (see docs/HYPERV.md)"
    )


def _authentication_failed(exc: BaseException, options: PsrpOptions, where: str) -> AuthenticationError:
    if options.auth == "certificate":
        who = "the client certificate"
    elif options.username:
        who = f"user {options.username!r}"
    else:
        who = "the Kerberos ticket's user"
    refused = isinstance(exc, psrp_errors.WinRMTransportError) or str(exc).startswith("Failed to authenticate")
    if refused:
        hint = "check the user name (DOMAIN\\user as DOMAIN%5Cuser) and " + (
            f"the password in {PASSWORD_ENV}" if options.auth in ("ntlm", "negotiate") else "the credentials"
        )
        return AuthenticationError(f"authentication failed for {who} on {where} (HTTP 401, {options.auth}): {hint}")
    return AuthenticationError(f"authentication failed for {who} on {where} ({options.auth}): {_first_line(exc)}")


def _http_status(code: int, where: str) -> TransportError:
    if 500 <= code < 600:
        return TransportError(f"{where} answered HTTP {code}: the WinRM service on the host failed; see its event log")
    return TransportError(f"{where} answered HTTP {code}: is that port the WinRM listener (path /wsman)?")


def _causes(exc: BaseException):
    """exc and every error it wraps: urllib3's .reason, exception arguments, __cause__ and __context__."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(e for e in wrapped if isinstance(e, BaseException))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
