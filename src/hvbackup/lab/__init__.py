"""The lab host: a folder that behaves like a Hyper-V host (docs/LAB.md).

lab = LabHost.create(Path("/srv/lab"), sample=True)   # or LabHost(Path("/srv/lab")) to open
host = powershell_host(lab)                           # what `--host lab:DIR` opens: the real code path
vm = host.get_vm("web-01")
cp = host.create_recovery_checkpoint(vm, ConsistencyLevel.ApplicationConsistent, "hvbackup-...")
"""

from __future__ import annotations

from pathlib import Path

from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab.host import LabHost, open_host

__all__ = ["LabHost", "open_host", "powershell_host"]

LAB_POLL_INTERVAL = 0.01  # the lab's jobs move on per poll, not per second: poll at once


def powershell_host(lab: LabHost | Path | str) -> PowerShellHost:
    """`PowerShellHost(LabTransport(lab), LocalFileSource)`: the lab answering the operation scripts,
    so everything above the transport is the code a real host runs (docs/LAB.md)."""
    from hvbackup.lab.transport import LabTransport

    opened = lab if isinstance(lab, LabHost) else LabHost(lab)
    return PowerShellHost(LabTransport(opened), LocalFileSource, poll_interval=LAB_POLL_INTERVAL)
