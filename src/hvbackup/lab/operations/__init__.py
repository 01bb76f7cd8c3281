"""The lab's answer to each PowerShell operation script, registered by the script's name.

A handler takes the lab and the script's parameters (`$HvParams`, as JSON) and returns the
document the script prints with Write-HvResult, in exactly its shape (tests/hyperv/test_shapes.py
reads the shapes from the .ps1 parse tree); it raises `hyperv.errors` exceptions for the
documents Write-HvFailure prints. One module per group of operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvbackup.lab.host import LabHost

Handler = Callable[["LabHost", dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register `handler` as the lab's answer to scripts/<name>.ps1."""

    def register(handler: Handler) -> Handler:
        if name in OPERATIONS:
            raise ValueError(f"two lab handlers for operation {name!r}")
        OPERATIONS[name] = handler
        return handler

    return register


from hvbackup.lab.operations import guest, restore, vms  # noqa: E402,F401 - registers the handlers
