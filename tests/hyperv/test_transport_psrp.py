"""PsrpTransport against servers on the loopback: how each way of failing reaches the user.

A real WinRM endpoint needs Windows, so these tests cover what can be shown without one:
options, and the typed one-line errors in plain words (never urllib3's "HTTPSConnectionPool ...
Max retries exceeded") for a closed port, a name that does not resolve, a port that drops
connections, untrusted and misnamed certificates, refused credentials, a 5xx and a silent server,
all through pypsrp's real HTTP stack.
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

    def do_POST(self):
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
    base = dict(
        host="127.0.0.1",
        port=port,
        ssl=False,
        auth="ntlm",
        username="backup",
        password="wrong",
        connection_timeout=5,
        operation_timeout=1,
        read_timeout=3,
    )
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


def assert_plain(exc: BaseException) -> str:
    """The message is one line of our own words, not urllib3's retry text."""
    text = str(exc)
    assert "\n" not in text and "ConnectionPool" not in text and "Max retries" not in text, text
    return text


def test_closed_port_says_connection_refused_on_host_and_port():
    port = free_port()
    with pytest.raises(TransportError) as caught:
        PsrpTransport(options(port, ssl=True)).run("Get-VM", timeout=10)
    assert assert_plain(caught.value) == (
        f"connection refused on 127.0.0.1:{port} (is the WinRM HTTPS listener on? see docs/HYPERV.md)"
    )
    with pytest.raises(TransportError, match=f"refused on 127.0.0.1:{port} \\(is the WinRM HTTP listener"):
        PsrpTransport(options(port)).run("Get-VM", timeout=10)


def test_unresolvable_host_name_says_the_name_is_not_resolved():
    with pytest.raises(TransportError) as caught:
        PsrpTransport(options(5986, host="no-such-host.invalid", ssl=True)).run("Get-VM", timeout=10)
    assert assert_plain(caught.value).startswith("cannot resolve the host name 'no-such-host.invalid'")


def test_port_that_drops_connections_says_the_connection_timed_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # One connection fills an accept queue of backlog 0; Linux then drops further SYNs,
        # as a firewall that drops the port does.
        with socket.create_connection(("127.0.0.1", port)), pytest.raises(OperationTimeout) as caught:
            PsrpTransport(options(port, ssl=True, connection_timeout=1)).run("Get-VM", timeout=10)
    assert assert_plain(caught.value).startswith(f"connection to 127.0.0.1:{port} timed out after 1 s")


def test_refused_credentials_are_authentication_error_and_the_pool_is_retried():
    _Refuse.requests = 0
    with serve(_Refuse) as port:
        transport = PsrpTransport(options(port))
        with pytest.raises(AuthenticationError, match=r"127.0.0.1"):
            transport.run("Get-VM", timeout=10)
        first = _Refuse.requests
        with pytest.raises(AuthenticationError):
            transport.run("Get-VM", timeout=10)
    assert first >= 1 and _Refuse.requests > first  # a failed pool is not kept: the next call connects again
    transport.close()


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_port_that_hangs_up_says_the_connection_was_closed():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def hang_up():
            connection, _ = listener.accept()
            connection.recv(65536)  # the request arrives, then the line goes dead
            connection.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        with pytest.raises(TransportError) as caught:
            PsrpTransport(options(port)).run("Get-VM", timeout=10)
        thread.join(timeout=10)
    assert assert_plain(caught.value) == (
        f"127.0.0.1:{port} closed the connection without answering (is that port the WinRM HTTP listener?)"
    )


def tls_context(tmp_path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 (saved as tmp_path/c.pem)."""
    cert, key = _self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return context


def test_self_signed_certificate_says_it_is_not_trusted_and_how_to_trust_it(tmp_path):
    with serve(_Refuse, tls_context(tmp_path)) as port:
        with pytest.raises(TransportError) as caught:
            PsrpTransport(options(port, ssl=True)).run("Get-VM", timeout=10)
        # Trusting that certificate gets past TLS to the (refused) authentication.
        trusting = PsrpTransport(options(port, ssl=True, cert_validation=str(tmp_path / "c.pem")))
        with pytest.raises(AuthenticationError):
            trusting.run("Get-VM", timeout=10)
    text = assert_plain(caught.value)
    assert text.startswith(f"TLS verification failed: the certificate of 127.0.0.1:{port} is not trusted (")
    assert "self-signed certificate" in text and "verify=/path/ca.pem" in text


def test_certificate_for_another_name_says_it_is_not_issued_to_that_host(tmp_path):
    with serve(_Refuse, tls_context(tmp_path)) as port:
        # Trusted, but issued to 127.0.0.1 only: reached as "localhost" it does not match.
        misnamed = PsrpTransport(options(port, host="localhost", ssl=True, cert_validation=str(tmp_path / "c.pem")))
        with pytest.raises(TransportError) as caught:
            misnamed.run("Get-VM", timeout=10)
    text = assert_plain(caught.value)
    assert text.startswith(f"TLS verification failed: the certificate of localhost:{port} is not issued to 'localhost'")
    assert "mismatch" in text


def test_plain_http_on_the_https_port_says_the_tls_handshake_failed():
    with serve(_Refuse) as port, pytest.raises(TransportError) as caught:
        PsrpTransport(options(port, ssl=True)).run("Get-VM", timeout=10)
    text = assert_plain(caught.value)
    assert text.startswith(f"TLS handshake with 127.0.0.1:{port} failed") and "ssl=0" in text


def test_https_401_says_authentication_failed_for_which_user(tmp_path):
    with serve(_Refuse, tls_context(tmp_path)) as port:
        transport = PsrpTransport(
            options(port, ssl=True, username="CORP\\backup", cert_validation=str(tmp_path / "c.pem"))
        )
        with pytest.raises(AuthenticationError) as caught:
            transport.run("Get-VM", timeout=10)
    text = assert_plain(caught.value)
    assert text.startswith(f"authentication failed for user 'CORP\\\\backup' on 127.0.0.1:{port} (HTTP 401, ntlm)")
    assert "HVBACKUP_HYPERV_PASSWORD" in text and "wrong" not in text  # the password itself is never shown


class _Fail(http.server.BaseHTTPRequestHandler):
    """Answers every WinRM POST with 500 and a body that is not a WSMan fault."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"Internal Server Error"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_5xx_says_the_winrm_service_failed(tmp_path):
    with serve(_Fail, tls_context(tmp_path)) as port:
        transport = PsrpTransport(options(port, ssl=True, cert_validation=str(tmp_path / "c.pem")))
        with pytest.raises(TransportError) as caught:
            transport.run("Get-VM", timeout=10)
    assert assert_plain(caught.value).startswith(
        f"127.0.0.1:{port} answered HTTP 500: the WinRM service on the host failed"
    )


def test_silent_server_is_operation_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        transport = PsrpTransport(options(port, read_timeout=2))
        with pytest.raises(OperationTimeout) as caught:
            transport.run("Get-VM", timeout=10)
    assert assert_plain(caught.value) == f"127.0.0.1:{port} accepted the connection but sent no answer within 2 s"


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
