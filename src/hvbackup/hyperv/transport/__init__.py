"""How a PowerShell script reaches a Hyper-V host: over PSRP (remote) or a local powershell.exe."""

from hvbackup.hyperv.transport.base import Transport

__all__ = ["Transport"]
