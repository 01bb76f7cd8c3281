"""Lab operations: the guest's KVP items (see lab/operations/__init__.py, docs/LAB.md).

Each lab VM's /var/lib/hyperv is its folder's guest/kvp: the same pool files the agent writes
through hvbackup.guest.kvp (docs/GUEST.md §15). `guest_items` answers as
Msvm_KvpExchangeComponent.GuestExchangeItems does (pool 1, as embedded Msvm_KvpExchangeDataItem
XML); `set_guest_item` as AddKvpItems/ModifyKvpItems do (pool 0). A VM that is not running, or
whose guest runs no KVP daemon (no Integration Services) or has Data Exchange off, shows no items
(docs/HYPERV.md §13).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hvbackup.guest import kvp as pools
from hvbackup.hyperv import kvp
from hvbackup.hyperv.enums import IntegrationServiceStatus, VMState
from hvbackup.lab.guestchannel import kvp_dir
from hvbackup.lab.operations import operation
from hvbackup.lab.record import VmRecord

if TYPE_CHECKING:
    from hvbackup.lab.host import LabHost

DATA_EXCHANGE = "Key-Value Pair Exchange"


def _exchanges(record: VmRecord) -> bool:
    service = record.model.integration_service(DATA_EXCHANGE)
    return (
        record.model.state == VMState.Running
        and record.guest != "none"
        and service is not None
        and service.enabled
        and service.status == IntegrationServiceStatus.Ok
    )


@operation("guest_items")
def guest_items(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    folder = lab.folder(params.get("VmId") or params.get("VmName") or "")
    with folder.io() as record:
        exchanging = _exchanges(record)
        vm_id = record.id
    items = pools.read_pool(kvp_dir(folder), pools.POOL_GUEST) if exchanging else {}
    return {"VMId": vm_id, "GuestExchangeItems": [kvp.data_item_xml(k, v, kvp.SOURCE_GUEST) for k, v in items.items()]}


@operation("set_guest_item")
def set_guest_item(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    folder = lab.folder(params["VmId"])
    name, data = str(params["Name"]), str(params["Data"])
    exists = name in pools.read_pool(kvp_dir(folder), pools.POOL_EXTERNAL)
    pools.update_pool(kvp_dir(folder), pools.POOL_EXTERNAL, {name: data})
    return {"VMId": folder.load().id, "Name": name, "Method": "ModifyKvpItems" if exists else "AddKvpItems"}
