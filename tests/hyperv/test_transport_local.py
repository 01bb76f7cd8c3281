"""LocalTransport: the script reaches powershell.exe intact on one stdin line, and failures are typed.

powershell.exe cannot exist here, so a stand-in executable plays its documented part of the
contract: it is started as `powershell.exe -NoProfile -NonInteractive -Command -`, reads the
command line from standard input, and prints what the script prints.
"""

from __future__ import annotations

import stat
import sys

import pytest

from hvbackup.hyperv.errors import OperationTimeout, TransportError, UnsupportedHost
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.hyperv.scripts import assemble
from hvbackup.hyperv.transport.local import LocalTransport, find_powershell, stdin_line

from .hyperv_fixtures import FIXTURES, operation_of

STAND_IN = """\
#!{python}
import base64, os, re, sys, time
assert sys.argv[1:] == ["-NoProfile", "-NonInteractive", "-Command", "-"], sys.argv
data = sys.stdin.buffer.read()
line, _, rest = data.partition(b"\\r\\n")
assert rest.strip() == b"", "more than one command line"
match = re.fullmatch(rb"& \\(\\[scriptblock\\]::Create\\(\\[Text\\.Encoding\\]::UTF8\\.GetString\\("
                     rb"\\[Convert\\]::FromBase64String\\('([A-Za-z0-9+/=]+)'\\)\\)\\)\\)", line)
assert match, line[:80]
script = base64.b64decode(match.group(1)).decode("utf-8")
with open(os.environ["STAND_IN_RECEIVED"], "w", encoding="utf-8") as received:
    received.write(script)
mode = os.environ.get("STAND_IN_MODE", "answer")
if mode == "sleep":
    time.sleep(30)
if mode == "crash":
    sys.stderr.write("powershell.exe : The term 'x' is not recognized\\nmore\\n")
    sys.exit(1)
sys.stdout.write(open(os.environ["STAND_IN_ANSWER"], encoding="utf-8").read())
"""


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "powershell.exe"
    exe.parent.mkdir()
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("STAND_IN_RECEIVED", str(tmp_path / "received.ps1"))
    monkeypatch.setenv("STAND_IN_ANSWER", str(FIXTURES / "get_host.json"))
    return exe


def test_script_arrives_whole_and_output_comes_back(stand_in, tmp_path):
    transport = LocalTransport(str(stand_in))
    script = assemble("get_host", {"Note": "naïve ‘quotes’ and 'more'"})
    output = transport.run(script, timeout=30)
    assert (tmp_path / "received.ps1").read_text(encoding="utf-8") == script
    assert output == (FIXTURES / "get_host.json").read_text()


def test_powershell_host_over_the_local_transport(stand_in, tmp_path):
    host = PowerShellHost(LocalTransport(str(stand_in)), lambda p: None)
    assert host.host_info().name == "HV01"
    assert operation_of((tmp_path / "received.ps1").read_text(encoding="utf-8"))[0] == "get_host"


def test_stdin_is_one_ascii_line_then_a_blank_line():
    line = stdin_line("Write-Output 'é'\n" * 3000)
    assert line.isascii() and line.count(b"\r\n") == 2 and line.endswith(b"\r\n\r\n")


def test_timeout_is_operation_timeout(stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN_MODE", "sleep")
    with pytest.raises(OperationTimeout, match="within 1 s"):
        LocalTransport(str(stand_in)).run(assemble("get_host", {}), timeout=1)


def test_crash_without_output_is_transport_error_with_first_stderr_line(stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN_MODE", "crash")
    with pytest.raises(TransportError, match=r"exited with 1: powershell.exe : The term 'x' is not recognized$"):
        LocalTransport(str(stand_in)).run(assemble("get_host", {}), timeout=30)


def test_missing_executable_is_transport_error(tmp_path):
    with pytest.raises(TransportError, match="cannot run"):
        LocalTransport(str(tmp_path / "nope.exe")).run("x", timeout=5)


def test_no_powershell_on_path_is_unsupported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnsupportedHost, match=r"powershell.exe"):
        find_powershell()


def test_powershell_found_on_path(monkeypatch, stand_in):
    monkeypatch.setenv("PATH", str(stand_in.parent))
    assert find_powershell() == str(stand_in)
