"""The lab behind the PowerShell transport: it answers each operation script as a Hyper-V host would.

`PowerShellHost(LabTransport(lab), LocalFileSource)` is what `--host lab:DIR` opens, so every line
of Python above the transport is the line a real host runs. The lab runs no PowerShell: it reads
the two lines `hyperv.scripts.assemble` writes at the top of every script (`$HvOperation = '...'`
and `$HvParams = ConvertFrom-Json '...'`), answers with the operation's handler in
`lab/operations/`, and prints the one JSON document the .ps1 would print: the result, or
`{"error": {...}}` in the shape of the prelude's `Write-HvFailure` (docs/LAB.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hvbackup.hyperv.errors import HyperVError, ScriptOutputError, WmiJobError
from hvbackup.hyperv.transport.base import Transport
from hvbackup.lab.host import LabHost
from hvbackup.lab.jobs import ScriptChangeTrackingError, ScriptWmiError
from hvbackup.lab.operations import OPERATIONS

_OPERATION = re.compile(r"^\$HvOperation = '(?P<name>[a-z_]+)'$", re.MULTILINE)
_PARAMS = re.compile(r"^\$HvParams = ConvertFrom-Json '(?P<literal>(?:[^']|'')*)'$", re.MULTILINE)

# hyperv/wire.py's error kinds, by exception class name.
_KINDS = ("VmNotFound", "ObjectNotFound", "InvalidVmState", "ChangeTrackingUnavailable")


def read_call(script: str) -> tuple[str, dict[str, Any]]:
    """(operation, parameters) of a script made by `hyperv.scripts.assemble`."""
    operation = _OPERATION.search(script)
    params = _PARAMS.search(script)
    if operation is None or params is None:
        raise ScriptOutputError("the lab host answers only scripts made by hvbackup.hyperv.scripts.assemble")
    return operation.group("name"), json.loads(params.group("literal").replace("''", "'"))


def failure_document(exc: HyperVError, operation: str) -> dict[str, Any]:
    """What Write-HvFailure prints for an error the script raised with New-HvError."""
    if isinstance(exc, WmiJobError):
        message = exc.script_message if isinstance(exc, ScriptWmiError) else str(exc)
        failure: dict[str, Any] = {"kind": "WmiJobError", "message": message, "operation": operation}
        if exc.code is not None:
            failure["code"] = exc.code
        failure["description"] = exc.description
        if exc.job_state is not None:
            failure["job_state"] = exc.job_state
        return {"error": failure}
    kind = next((k for k in _KINDS if any(c.__name__ == k for c in type(exc).__mro__)), "Unexpected")
    message = str(exc)
    prefix = f"{operation}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    document: dict[str, Any] = {"kind": kind, "message": message, "operation": operation}
    if isinstance(exc, ScriptChangeTrackingError):
        document["code"] = exc.code
    return {"error": document}


class LabTransport(Transport):
    """Answers the operation scripts from a lab folder; one per `PowerShellHost`."""

    def __init__(self, lab: LabHost) -> None:
        self.lab = lab
        self.host_name = lab.host_info().name

    def run(self, script: str, timeout: float) -> str:
        operation, params = read_call(script)
        handler = OPERATIONS.get(operation)
        if handler is None:
            document = {
                "error": {
                    "kind": "Unexpected",
                    "message": f"the lab host has no answer for operation {operation!r}",
                    "operation": operation,
                }
            }
        else:
            try:
                document = handler(self.lab, params)
            except HyperVError as exc:
                document = failure_document(exc, operation)
        return json.dumps(document, ensure_ascii=True, separators=(",", ":"))
