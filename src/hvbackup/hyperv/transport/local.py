"""Run the scripts with the host's own Windows PowerShell, when hvbackup runs on the Hyper-V host.

`powershell.exe -Command -` reads standard input like an interactive prompt, line by line,
and multi-line statements need an extra blank line to end (PowerShell/PowerShell#3223,
#21644, #21808). So the script travels base64-encoded on one line, decoded and run as one
script block; its output is pure ASCII (Write-HvResult escapes the rest).
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess

from hvbackup.hyperv.errors import OperationTimeout, TransportError, UnsupportedHost
from hvbackup.hyperv.transport.base import Transport

EXECUTABLES = ("powershell.exe", "powershell")
ARGUMENTS = ("-NoProfile", "-NonInteractive", "-Command", "-")


def stdin_line(script: str) -> bytes:
    """The one line fed to `powershell.exe -Command -` that runs `script` as a whole."""
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    command = f"& ([scriptblock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{encoded}'))))"
    return (command + "\r\n\r\n").encode("ascii")


def find_powershell() -> str:
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    raise UnsupportedHost(
        "'local' needs Windows PowerShell (powershell.exe): run hvbackup on the Hyper-V host, or use psrp://"
    )


class LocalTransport(Transport):
    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or find_powershell()
        self.host_name = socket.gethostname()

    def run(self, script: str, timeout: float) -> str:
        try:
            done = subprocess.run(
                [self.executable, *ARGUMENTS],
                input=stdin_line(script),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OperationTimeout(f"local PowerShell did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise TransportError(f"cannot run {self.executable}: {exc.strerror or exc}") from None
        output = done.stdout.decode("ascii", errors="replace")
        if done.returncode != 0 and not output.strip():
            detail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise TransportError(
                f"{self.executable} exited with {done.returncode}: {detail[0] if detail else 'no output'}"
            )
        return output
