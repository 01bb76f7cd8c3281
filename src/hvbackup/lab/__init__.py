"""The lab host: a folder that behaves like a Hyper-V host (docs/LAB.md).

lab = LabHost.create(Path("/srv/lab"), sample=True)   # or LabHost(Path("/srv/lab")) to open
vm = lab.get_vm("web-01")
cp = lab.create_recovery_checkpoint(vm, ConsistencyLevel.ApplicationConsistent, "hvbackup-...")
"""

from hvbackup.lab.host import LabHost, open_host

__all__ = ["LabHost", "open_host"]
