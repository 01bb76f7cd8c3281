"""Typed failures of Hyper-V operations, each an HvBackupError so the CLI prints one line."""

from __future__ import annotations

from hvbackup.errors import HvBackupError


class HyperVError(HvBackupError):
    """A Hyper-V operation failed."""


class TransportError(HyperVError):
    """The host could not be reached, or the connection broke mid-call."""


class AuthenticationError(TransportError):
    """The host refused our credentials."""


class OperationTimeout(TransportError):
    """A call to the host did not finish within its time limit."""


class ScriptOutputError(HyperVError):
    """A script printed something that is not the one JSON document of the expected shape."""


class VmNotFound(HyperVError):
    """No VM with that id or name exists on the host."""


class ObjectNotFound(HyperVError):
    """A checkpoint, reference point, job or disk the call names does not exist (any more)."""


class InvalidVmState(HyperVError):
    """The VM is in a state that does not allow the operation (e.g. merging disks, already off)."""


class ChangeTrackingUnavailable(HyperVError):
    """Resilient change tracking cannot answer for this disk and reference point: read it fully."""


class WmiJobError(HyperVError):
    """A WMI method or the job it started failed; carries the WMI error code and description."""

    def __init__(self, operation: str, code: int | None, description: str, job_state: int | None = None) -> None:
        self.operation = operation
        self.code = code
        self.description = description
        self.job_state = job_state
        shown = f"error {code}" if code is not None else "failed"
        super().__init__(f"{operation}: WMI {shown}: {description}".rstrip(": "))


class UnsupportedHost(HyperVError):
    """The host spec or host cannot offer this transport (e.g. `local` without powershell.exe)."""
