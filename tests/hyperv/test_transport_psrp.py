"""PsrpTransport against servers on the loopback: how each way of failing reaches the user.

A real WinRM endpoint needs Windows, so these tests cover what can be shown without one:
options, and the typed one-line errors for a closed port, refused credentials, an untrusted
certificate and a silent server, all through pypsrp's real HTTP stack.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from contextlib import contextmanager

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hvbackup.hyperv.errors import AuthenticationError, OperationTimeout, TransportError, UnsupportedHost
from hvbackup.hyperv.transport.psrp import PsrpOptions, PsrpTransport


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Refuse(http.server.BaseHTTPRequestHandler):
    """Answers every WinRM POST with 401 Negotiate/NTLM, as a host does for bad credentials."""

    requests = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("WWW-Authenticate", "NTLM")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def serve(handler, tls_context: ssl.SSLContext | None = None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def options(port: int, **kw) -> PsrpOptions:
    base = dict(host="127.0.0.1", port=port, ssl=False, auth="ntlm", username="backup", password="wrong",
                connection_timeout=5, operation_timeout=1, read_timeout=3)
    return PsrpOptions(**(base | kw))


def test_options_are_checked():
    with pytest.raises(TransportError, match="unknown WinRM authentication"):
        PsrpOptions(host="h", auth="basic")
    with pytest.raises(TransportError, match="certificate authentication needs"):
        PsrpOptions(host="h", auth="certificate")
    with pytest.raises(TransportError, match="read timeout must be longer"):
        PsrpOptions(host="h", operation_timeout=30, read_timeout=30)
    args = PsrpOptions(host="h", auth="certificate", certificate_pem="/c", certificate_key_pem="/k").wsman_arguments()
    assert args["port"] == 5986 and args["ssl"] and "password" not in args and args["certificate_pem"] == "/c"


def test_closed_port_is_transport_error():
    transport = PsrpTransport(options(free_port()))
    with pytest.raises(TransportError, match="127.0.0.1: cannot connect"):
        transport.run("Get-VM", timeout=10)


def test_refused_credentials_are_authentication_error_and_the_pool_is_retried():
    _Refuse.requests = 0
    with serve(_Refuse) as port:
        transport = PsrpTransport(options(port))
        with pytest.raises(AuthenticationError, match="127.0.0.1"):
            transport.run("Get-VM", timeout=10)
        first = _Refuse.requests
        with pytest.raises(AuthenticationError):
            transport.run("Get-VM", timeout=10)
    assert first >= 1 and _Refuse.requests > first  # a failed pool is not kept: the next call connects again
    transport.close()


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_untrusted_certificate_is_a_tls_error(tmp_path):
    cert, key = _self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    with serve(_Refuse, context) as port:
        transport = PsrpTransport(options(port, ssl=True))
        with pytest.raises(TransportError, match="TLS failed"):
            transport.run("Get-VM", timeout=10)
        # Trusting that certificate gets past TLS to the (refused) authentication.
        trusting = PsrpTransport(options(port, ssl=True, cert_validation=str(tmp_path / "c.pem")))
        with pytest.raises(AuthenticationError):
            trusting.run("Get-VM", timeout=10)


def test_silent_server_is_operation_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        transport = PsrpTransport(options(port, read_timeout=2))
        with pytest.raises(OperationTimeout, match="no answer in time"):
            transport.run("Get-VM", timeout=10)


def test_kerberos_without_its_libraries_says_what_to_install():
    try:
        import gssapi  # noqa: F401
    except ImportError:
        expected: type[Exception] = UnsupportedHost
    else:
        expected = TransportError  # with the libraries there, the loopback server refuses instead
    with serve(_Refuse) as port:
        transport = PsrpTransport(options(port, host="localhost", auth="kerberos", username=None, password=None))
        with pytest.raises(expected) as caught:
            transport.run("Get-VM", timeout=10)
    if expected is UnsupportedHost:
        assert "pypsrp[kerberos]" in str(caught.value) and "auth=ntlm" in str(caught.value)
