"""The transport interface: run one PowerShell script, give back what it printed."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Transport(ABC):
    """Runs whole PowerShell scripts on one host. Implementations map their failures to
    hvbackup.hyperv.errors (TransportError, AuthenticationError, OperationTimeout)."""

    host_name: str

    @abstractmethod
    def run(self, script: str, timeout: float) -> str:
        """Run `script`; return its output stream as text. Raises OperationTimeout after `timeout` s."""

    def close(self) -> None:
        """Release the connection."""
