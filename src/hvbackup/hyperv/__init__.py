"""Hyper-V: the model (VMs, disks, checkpoints, reference points), the operations interface
(`HyperVHost`), and its PowerShell implementation over PSRP or a local powershell.exe.

    from hvbackup.connect import connect
    with connect("psrp://backup@hv01.example.com") as host:
        vms = host.inventory()
"""

from hvbackup.hyperv.enums import ConsistencyLevel, VMState
from hvbackup.hyperv.host import ByteSource, HyperVHost, checkpoint_name
from hvbackup.hyperv.model import (
    CHECKPOINT_PREFIX,
    VM,
    Checkpoint,
    Host,
    Orphan,
    ReferencePoint,
    VirtualDisk,
    VmConfig,
)

__all__ = [
    "CHECKPOINT_PREFIX",
    "VM",
    "ByteSource",
    "Checkpoint",
    "ConsistencyLevel",
    "Host",
    "HyperVHost",
    "Orphan",
    "ReferencePoint",
    "VMState",
    "VirtualDisk",
    "VmConfig",
    "checkpoint_name",
]
