"""Open a Hyper-V host, or the lab host, from a `--host` spec string.

The one module that knows both hyperv/ (the real host) and lab/ (the simulator).

    psrp://[user@]host[:port][?auth=kerberos|ntlm|negotiate|certificate&ssl=0&verify=0|/ca.pem
                              &cert=/c.pem&key=/k.pem]
    local          the Hyper-V host this process runs on (Windows PowerShell)
    lab:DIR        the built-in lab host in DIR, behind the PowerShell host (hvbackup.lab.powershell_host)

The password for psrp:// comes from the `password` argument or HVBACKUP_HYPERV_PASSWORD.
Kerberos uses the ticket cache and needs no password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from hvbackup.errors import UsageError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.host import HyperVHost
from hvbackup.hyperv.transport.psrp import AUTH_METHODS, HTTP_PORT, HTTPS_PORT, PASSWORD_ENV, PsrpOptions

_QUERY_KEYS = {"auth", "ssl", "verify", "cert", "key"}


@dataclass(frozen=True)
class HostSpec:
    kind: str  # "psrp" | "local" | "lab"
    host: str = ""
    port: int = 0
    username: str | None = None
    path: str = ""
    options: dict[str, str] = field(default_factory=dict)


def parse_spec(spec: str) -> HostSpec:
    """The parts of a host spec; UsageError naming what is wrong."""
    text = spec.strip()
    if text == "local":
        return HostSpec("local")
    if text.startswith("lab:"):
        directory = text[4:]
        if not directory:
            raise UsageError("lab host spec needs a directory: lab:DIR")
        return HostSpec("lab", path=directory)
    if text.startswith("psrp://"):
        return _parse_psrp(text[len("psrp://") :], spec)
    raise UsageError(f"unknown host spec {spec!r}: use psrp://user@host[:port], local, or lab:DIR")


def _parse_psrp(rest: str, spec: str) -> HostSpec:
    location, _, query = rest.partition("?")
    location = location.rstrip("/")
    username = None
    if "@" in location:
        user_part, location = location.rsplit("@", 1)
        username = unquote(user_part) or None
    host, port = _host_and_port(location, spec)
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _QUERY_KEYS
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(sorted(unknown))} in {spec!r}: known are {', '.join(sorted(_QUERY_KEYS))}"
        )
    auth = options.get("auth", "negotiate")
    if auth not in AUTH_METHODS:
        raise UsageError(f"unknown auth {auth!r} in {spec!r}: use one of {', '.join(AUTH_METHODS)}")
    ssl = _flag(options.get("ssl", "1"), "ssl", spec)
    return HostSpec(
        "psrp", host=host, port=port or (HTTPS_PORT if ssl else HTTP_PORT), username=username, options=options
    )


def _host_and_port(location: str, spec: str) -> tuple[str, int]:
    if location.startswith("["):  # [IPv6]:port
        host, _, tail = location[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = location.partition(":")
    if not host:
        raise UsageError(f"no host name in {spec!r}")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise UsageError(f"bad port {port_text!r} in {spec!r}")
    return host, int(port_text) if port_text else 0


def _flag(value: str, name: str, spec: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"option {name}={value!r} in {spec!r} must be 1 or 0")


def psrp_options(spec: HostSpec, password: str | None = None) -> PsrpOptions:
    opts = spec.options
    verify = opts.get("verify", "1")
    cert_validation: bool | str = (
        verify if verify.lower() not in ("0", "1", "false", "true") else verify.lower() in ("1", "true")
    )
    _check_files(opts, with_ca=isinstance(cert_validation, str))
    auth = opts.get("auth", "negotiate")
    if auth in ("ntlm", "negotiate") and spec.username and password is None:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise UsageError(f"no password for {spec.username}@{spec.host}: set {PASSWORD_ENV}")
    return PsrpOptions(
        host=spec.host,
        port=spec.port,
        ssl=_flag(opts.get("ssl", "1"), "ssl", spec.host),
        auth=auth,
        username=spec.username,
        password=password,
        certificate_pem=opts.get("cert"),
        certificate_key_pem=opts.get("key"),
        cert_validation=cert_validation,
    )


def _check_files(opts: dict[str, str], *, with_ca: bool) -> None:
    """cert=, key= and verify=/path name files: a missing one is named now, not deep in TLS."""
    names = ["cert", "key"] + (["verify"] if with_ca else [])
    for name in names:
        path = opts.get(name)
        if path and not os.path.isfile(path):
            raise UsageError(f"{name}={path} in the host spec: no such file")


def connect(spec: str, *, password: str | None = None) -> HyperVHost:
    """A HyperVHost for `spec` (see the module docstring)."""
    parsed = parse_spec(spec)
    if parsed.kind == "lab":
        return _open_lab(parsed.path)
    from hvbackup.hyperv.powershell import PowerShellHost

    if parsed.kind == "local":
        from hvbackup.hyperv.transport.local import LocalTransport

        return PowerShellHost(LocalTransport(), LocalFileSource)
    from hvbackup.hyperv.smb import SmbCredentials, SmbDiskOpener
    from hvbackup.hyperv.transport.psrp import PsrpTransport

    options = psrp_options(parsed, password)
    smb = SmbCredentials(
        username=options.username,
        password=options.password,
        auth_protocol="kerberos" if options.auth == "kerberos" else "negotiate",
    )
    return PowerShellHost(PsrpTransport(options), SmbDiskOpener(options.host, smb))


def _open_lab(directory: str) -> HyperVHost:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"lab:{directory}: {directory} is a file, not a lab host folder")
    from hvbackup.lab import open_host, powershell_host  # here, so that a psrp:// run never loads the simulator

    return powershell_host(open_host(directory))
