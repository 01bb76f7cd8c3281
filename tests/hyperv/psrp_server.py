"""A loopback stand-in for a Windows host's WinRM service running PowerShell remoting.

It speaks enough WSMan (MS-WSMV) over HTTPS, with NTLM authentication on every connection, and
enough PSRP (MS-PSRP, through psrpcore's server side) for pypsrp's client to open a runspace pool
(Create shell), run a script (Command, Send, Receive), close a pipeline (Signal terminate), check a
pool's health (Get on the shell) and close the pool (Delete). Every script is answered with a
string the test chooses. Like WinRM (docs/HYPERV.md §15) it refuses a command when a shell already
has `max_commands_per_shell` commands that were never terminated, refuses a shell past
`max_shells`, and forgets a shell that has been idle for `idle_timeout` seconds, after which every
request naming that shell gets the "shell not found" fault. `hang_up_after_command` makes it
close the connection without answering the first Receive of the next command, as a network
failure in the middle of a running script does.

What it does not do: message-level encryption (HTTP with NTLM sealing: tests use HTTPS), Kerberos,
CredSSP, Connect/Disconnect/Reconnect, input to pipelines, host calls, key exchange, Receive that
waits for output (every script completes as soon as its command arrives), and WinRM's
"Disconnected" shell state.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psrpcore
import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psrpcore.types import PSInvocationState

S = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
WST = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
PWSH = "http://schemas.microsoft.com/powershell"
FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

ACTION_CREATE = f"{WST}/Create"
ACTION_DELETE = f"{WST}/Delete"
ACTION_GET = f"{WST}/Get"
ACTION_COMMAND = f"{RSP}/Command"
ACTION_SEND = f"{RSP}/Send"
ACTION_RECEIVE = f"{RSP}/Receive"
ACTION_SIGNAL = f"{RSP}/Signal"
SIGNAL_TERMINATE = f"{RSP}/signal/terminate"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"
COMMAND_DONE = f"{RSP}/CommandState/Done"
COMMAND_RUNNING = f"{RSP}/CommandState/Running"

SHELL_NOT_FOUND_CODE = 2150858843  # 0x8033805B, the fault pypsrp's RunspacePool.is_alive reads as "closed"
SHELL_NOT_FOUND = (
    "The request for the Windows Remote Shell with ShellId {} failed because the shell was not found on the server."
)
TOO_MANY_COMMANDS = (
    "The WS-Management service cannot process the request. The maximum number of concurrent commands per shell"
    " has been exceeded. Retry the request later or raise the Maximum Commands per Shell quota."
)
TOO_MANY_SHELLS = "The user already has the maximum number of concurrent shells ({}) on this server."

USER = "backup"
PASSWORD = "loopback-Secret-1"


class WsmanFault(Exception):
    def __init__(self, subcode: str, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.subcode, self.reason, self.code = subcode, reason, code


class HangUp(Exception):
    """Close the connection without answering."""


@dataclass
class Shell:
    shell_id: str
    pool: psrpcore.ServerRunspacePool
    last_used: float
    commands: dict[str, psrpcore.ServerPipeline] = field(default_factory=dict)
    pending: dict[uuid.UUID | None, bytearray] = field(default_factory=dict)


@dataclass
class WinRMStandIn:
    """The server's state and its limits; the test reads the counters and sets the answer."""

    answer: Callable[[str], str] = lambda script: "ok"
    max_commands_per_shell: int = 1000
    max_shells: int = 25
    idle_timeout: float = 180.0
    hang_up_after_command: bool = False
    shells: dict[str, Shell] = field(default_factory=dict)
    shells_created: int = 0
    shells_forgotten: int = 0
    health_checks: int = 0
    unknown_shell_requests: list[str] = field(default_factory=list)
    scripts_run: list[str] = field(default_factory=list)
    commands_refused: int = 0
    connections_hung_up: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, action: str, header: ET.Element, body: ET.Element) -> list[ET.Element]:
        with self.lock:
            self._forget_idle_shells()
            if action == ACTION_CREATE:
                return self._create(body)
            if action == ACTION_GET:
                self.health_checks += 1
            shell = self._shell(header, action)
            shell.last_used = time.monotonic()
            handlers = {
                ACTION_GET: self._get,
                ACTION_COMMAND: self._command,
                ACTION_SEND: self._send,
                ACTION_RECEIVE: self._receive,
                ACTION_SIGNAL: self._signal,
                ACTION_DELETE: self._delete,
            }
            if action not in handlers:
                raise WsmanFault("w:ActionNotSupported", f"the stand-in does not implement {action}")
            return handlers[action](shell, body)

    def open_commands(self) -> list[int]:
        with self.lock:
            return [len(shell.commands) for shell in self.shells.values()]

    def _forget_idle_shells(self) -> None:
        now = time.monotonic()
        for shell_id, shell in list(self.shells.items()):
            if now - shell.last_used > self.idle_timeout:
                del self.shells[shell_id]
                self.shells_forgotten += 1

    def _shell(self, header: ET.Element, action: str) -> Shell:
        selector = header.find(f"{{{WSMAN}}}SelectorSet/{{{WSMAN}}}Selector[@Name='ShellId']")
        shell_id = (selector.text or "") if selector is not None else ""
        if shell_id not in self.shells:
            self.unknown_shell_requests.append(action.rsplit("/", 1)[-1])
            raise WsmanFault("w:InvalidSelectors", SHELL_NOT_FOUND.format(shell_id), SHELL_NOT_FOUND_CODE)
        return self.shells[shell_id]

    def _create(self, body: ET.Element) -> list[ET.Element]:
        if len(self.shells) >= self.max_shells:
            raise WsmanFault("w:QuotaLimit", TOO_MANY_SHELLS.format(self.max_shells))
        creation = body.find(f"{{{RSP}}}Shell/{{{PWSH}}}creationXml")
        if creation is None or not creation.text:
            raise WsmanFault("w:InvalidParameter", "a PowerShell shell needs creationXml")
        shell = Shell(str(uuid.uuid4()).upper(), psrpcore.ServerRunspacePool(), time.monotonic())
        self._feed(shell, base64.b64decode(creation.text), None)
        self.shells[shell.shell_id] = shell
        self.shells_created += 1
        return [_resource_created(shell.shell_id), _shell_element(shell.shell_id, "Connected")]

    def _get(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        return [_shell_element(shell.shell_id, "Connected")]

    def _command(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        line = body.find(f"{{{RSP}}}CommandLine")
        arguments = body.find(f"{{{RSP}}}CommandLine/{{{RSP}}}Arguments")
        if line is None or arguments is None or not arguments.text:
            raise WsmanFault("w:InvalidParameter", "a PowerShell command needs its first fragment as Arguments")
        if len(shell.commands) >= self.max_commands_per_shell:
            self.commands_refused += 1
            raise WsmanFault("w:InternalError", TOO_MANY_COMMANDS)
        command_id = line.get("CommandId") or str(uuid.uuid4()).upper()
        shell.commands[command_id] = psrpcore.ServerPipeline(shell.pool, uuid.UUID(command_id))
        self._feed(shell, base64.b64decode(arguments.text), command_id)
        response = ET.Element(f"{{{RSP}}}CommandResponse")
        ET.SubElement(response, f"{{{RSP}}}CommandId").text = command_id
        return [response]

    def _send(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        for stream in body.findall(f"{{{RSP}}}Send/{{{RSP}}}Stream"):
            self._feed(shell, base64.b64decode(stream.text or ""), stream.get("CommandId"))
        return [ET.Element(f"{{{RSP}}}SendResponse")]

    def _receive(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        desired = body.find(f"{{{RSP}}}Receive/{{{RSP}}}DesiredStream")
        command_id = desired.get("CommandId") if desired is not None else None
        if command_id is not None and self.hang_up_after_command:
            self.hang_up_after_command = False
            self.connections_hung_up += 1
            raise HangUp()
        self._collect(shell)
        data = bytes(shell.pending.pop(_target(command_id), b""))
        response = ET.Element(f"{{{RSP}}}ReceiveResponse")
        stream = ET.SubElement(response, f"{{{RSP}}}Stream", Name="stdout")
        if command_id is not None:
            stream.set("CommandId", command_id)
        stream.text = base64.b64encode(data).decode()
        if command_id is not None:
            pipeline = shell.commands.get(command_id)
            running = pipeline is not None and pipeline.state == PSInvocationState.Running
            ET.SubElement(
                response,
                f"{{{RSP}}}CommandState",
                CommandId=command_id,
                State=COMMAND_RUNNING if running else COMMAND_DONE,
            )
        return [response]

    def _signal(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        signal = body.find(f"{{{RSP}}}Signal")
        code = body.find(f"{{{RSP}}}Signal/{{{RSP}}}Code")
        command_id = signal.get("CommandId") if signal is not None else None
        pipeline = shell.commands.get(command_id or "")
        if pipeline is None:
            raise WsmanFault("w:InvalidParameter", f"no command {command_id} in shell {shell.shell_id}")
        if code is not None and (code.text or "").lower() == SIGNAL_TERMINATE.lower():
            del shell.commands[command_id or ""]
            shell.pending.pop(_target(command_id), None)
            if pipeline.state == PSInvocationState.Running:
                pipeline.begin_stop()
            pipeline.close()
        elif pipeline.state == PSInvocationState.Running:
            pipeline.begin_stop()
            pipeline.stop()
        response = ET.Element(f"{{{RSP}}}SignalResponse")
        ET.SubElement(response, f"{{{RSP}}}CommandId").text = command_id
        return [response]

    def _delete(self, shell: Shell, body: ET.Element) -> list[ET.Element]:
        del self.shells[shell.shell_id]
        return []

    def _feed(self, shell: Shell, data: bytes, command_id: str | None) -> None:
        """Give PSRP fragments to the pool; run each pipeline whose CreatePipeline is complete."""
        pool = shell.pool
        pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, _target(command_id)))
        while (event := pool.next_event()) is not None:
            if isinstance(event, psrpcore.CreatePipelineEvent):
                self._run(pool.pipeline_table[event.pipeline_id])
        self._collect(shell)

    def _run(self, pipeline: psrpcore.ServerPipeline) -> None:
        assert pipeline.metadata is not None
        script = "\n".join(command.command_text for command in pipeline.metadata.commands)
        self.scripts_run.append(script)
        pipeline.start()
        pipeline.write_output(self.answer(script))
        pipeline.complete()

    def _collect(self, shell: Shell) -> None:
        """Move what the pool has to send into the buffer of the pool or pipeline it is for."""
        while (payload := shell.pool.data_to_send()) is not None:
            shell.pending.setdefault(payload.pipeline_id, bytearray()).extend(payload.data)


def _target(command_id: str | None) -> uuid.UUID | None:
    return uuid.UUID(command_id) if command_id else None


def _resource_created(shell_id: str) -> ET.Element:
    created = ET.Element(f"{{{WST}}}ResourceCreated")
    ET.SubElement(created, f"{{{WSA}}}Address").text = "https://127.0.0.1/wsman"
    parameters = ET.SubElement(created, f"{{{WSA}}}ReferenceParameters")
    ET.SubElement(parameters, f"{{{WSMAN}}}ResourceURI").text = f"{PWSH}/Microsoft.PowerShell"
    selectors = ET.SubElement(parameters, f"{{{WSMAN}}}SelectorSet")
    ET.SubElement(selectors, f"{{{WSMAN}}}Selector", Name="ShellId").text = shell_id
    return created


def _shell_element(shell_id: str, state: str) -> ET.Element:
    shell = ET.Element(f"{{{RSP}}}Shell")
    ET.SubElement(shell, f"{{{RSP}}}ShellId").text = shell_id
    ET.SubElement(shell, f"{{{RSP}}}ResourceUri").text = f"{PWSH}/Microsoft.PowerShell"
    ET.SubElement(shell, f"{{{RSP}}}Owner").text = USER
    ET.SubElement(shell, f"{{{RSP}}}State").text = state
    ET.SubElement(shell, f"{{{RSP}}}InputStreams").text = "stdin pr"
    ET.SubElement(shell, f"{{{RSP}}}OutputStreams").text = "stdout"
    return shell


def _envelope(action: str, relates_to: str, body_children: list[ET.Element]) -> bytes:
    envelope = ET.Element(f"{{{S}}}Envelope")
    header = ET.SubElement(envelope, f"{{{S}}}Header")
    ET.SubElement(header, f"{{{WSA}}}Action").text = action
    ET.SubElement(header, f"{{{WSA}}}MessageID").text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    body = ET.SubElement(envelope, f"{{{S}}}Body")
    body.extend(body_children)
    return ET.tostring(envelope, encoding="utf-8")


def _fault_body(fault: WsmanFault) -> ET.Element:
    element = ET.Element(f"{{{S}}}Fault")
    code = ET.SubElement(element, f"{{{S}}}Code")
    ET.SubElement(code, f"{{{S}}}Value").text = "s:Receiver"
    ET.SubElement(ET.SubElement(code, f"{{{S}}}Subcode"), f"{{{S}}}Value").text = fault.subcode
    ET.SubElement(ET.SubElement(element, f"{{{S}}}Reason"), f"{{{S}}}Text").text = fault.reason
    if fault.code is not None:
        detail = ET.SubElement(element, f"{{{S}}}Detail")
        wsman_fault = ET.SubElement(detail, f"{{{FAULT}}}WSManFault", Code=str(fault.code), Machine="127.0.0.1")
        ET.SubElement(wsman_fault, f"{{{FAULT}}}Message").text = fault.reason
    return element


class _Handler(http.server.BaseHTTPRequestHandler):
    """One instance per connection: NTLM authenticates the connection, as WinRM's HTTP.sys does."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._ntlm: spnego.ContextProxy | None = None
        self._authenticated = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self._authenticated and not self._authenticate():
            return
        envelope = ET.fromstring(body)
        header = envelope.find(f"{{{S}}}Header")
        soap_body = envelope.find(f"{{{S}}}Body")
        assert header is not None and soap_body is not None
        action = header.findtext(f"{{{WSA}}}Action", "")
        message_id = header.findtext(f"{{{WSA}}}MessageID", "")
        try:
            children = self.server.winrm.handle(action, header, soap_body)
        except HangUp:
            self.close_connection = True
            return
        except WsmanFault as fault:
            self._reply(500, _envelope(f"{WSMAN}/fault", message_id, [_fault_body(fault)]))
            return
        except Exception as exc:  # a stand-in bug: the test sees it in winrm.errors
            self.server.winrm.errors.append(f"{action}: {type(exc).__name__}: {exc}")
            self._reply(500, b"")
            return
        self._reply(200, _envelope(f"{action}Response", message_id, children))

    def _authenticate(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("negotiate", "ntlm") or not token:
            self._challenge([])
            return False
        if self._ntlm is None:
            self._ntlm = spnego.server(protocol="ntlm")
        try:
            answer = self._ntlm.step(base64.b64decode(token))
        except spnego.exceptions.SpnegoError:
            self._ntlm = None
            self._challenge([])
            return False
        if not self._ntlm.complete:
            self._challenge([f"{scheme} {base64.b64encode(answer or b'').decode()}"])
            return False
        self._authenticated = True
        return True

    def _challenge(self, tokens: list[str]) -> None:
        self.send_response(401)
        for value in tokens or ["Negotiate", "NTLM"]:
            self.send_header("WWW-Authenticate", value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    winrm: WinRMStandIn


@dataclass(frozen=True)
class Endpoint:
    port: int
    ca_file: Path
    winrm: WinRMStandIn


@contextmanager
def serve(folder: Path, winrm: WinRMStandIn | None = None) -> Iterator[Endpoint]:
    """Run the stand-in on 127.0.0.1 (a free port, HTTPS with a self-signed certificate in `folder`,
    NTLM user USER/PASSWORD) until the block ends."""
    winrm = winrm or WinRMStandIn()
    ca_file = _write_certificate(folder)
    users = folder / "ntlm-users"
    users.write_text(f":{USER}:{PASSWORD}\n")
    previous = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = str(users)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca_file, folder / "key.pem")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.winrm = winrm
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(server.server_address[1], ca_file, winrm)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        if previous is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = previous


def _write_certificate(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ca_file = folder / "cert.pem"
    ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca_file
