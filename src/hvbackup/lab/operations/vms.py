"""Lab operations: the VM, checkpoint, reference point, change tracking and state scripts.

Each handler answers as its .ps1 does (the script's name is on the decorator), in the shapes of
lab/shapes.py. The four operations that start a WMI job (create_checkpoint,
convert_to_reference_point, destroy_checkpoint, destroy_reference_point) go through `_run_job`:
in the lab's "sync" job mode the method finishes at once (return value 0); in "async" mode it
returns 4096 and the script prints {"Pending": ...}, and poll_job finishes it later (docs/LAB.md
"Jobs and return codes"). Failures set with `LabHost.fail_operation` come out here.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hvbackup.hyperv.enums import ConsistencyLevel, SnapshotType
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, HyperVError, ObjectNotFound, VmNotFound, WmiJobError
from hvbackup.hyperv.model import VM, Checkpoint, ReferencePoint
from hvbackup.lab.disks import with_owner
from hvbackup.lab.jobs import (
    JOB_RUNNING,
    RETURN_FILE_NOT_FOUND,
    RETURN_INVALID_STATE,
    JobStore,
    ScriptChangeTrackingError,
    job_failure,
    method_failure,
    new_job_id,
    return_text,
)
from hvbackup.lab.operations import operation
from hvbackup.lab.rct import query_changes
from hvbackup.lab.shapes import (
    done_document,
    hard_drive_document,
    host_document,
    orphan_document,
    pending_document,
    reference_point_document,
    vm_document,
    wmi_checkpoint_document,
)

if TYPE_CHECKING:
    from hvbackup.lab.host import LabHost

RCT_INVALID_ID = 32773  # the return value the lab gives for an RCT id it cannot answer (docs/LAB.md)
QUERY_WINDOW = 64 << 20  # what one GetVirtualDiskChanges call of the lab covers at most
QUERY_RANGES = 256
_JOB_ID = re.compile(r"^[A-Za-z0-9{}:-]+$")

Result = Checkpoint | ReferencePoint | None


# -- lookups as the prelude makes them ---------------------------------------------------------
def _vm(lab: LabHost, vm_id: Any) -> VM:
    """Get-HvVm / Get-HvComputerSystem: a VM by its GUID."""
    try:
        guid = str(uuid.UUID(str(vm_id)))
    except ValueError:
        raise HyperVError(f'Cannot convert value "{vm_id}" to type "System.Guid"') from None
    try:
        return lab.get_vm(guid)
    except VmNotFound:
        raise VmNotFound(f"no VM with id {guid}") from None


def _checkpoint(lab: LabHost, vm_id: Any, checkpoint_id: Any) -> Checkpoint:
    """Get-HvSnapshotSettingData: the VM's checkpoint by id."""
    vm = _vm(lab, vm_id)
    found = next((c for c in vm.checkpoints if c.id.lower() == str(checkpoint_id).lower()), None)
    if found is None:
        raise ObjectNotFound(f"VM {vm_id} has no checkpoint {checkpoint_id}")
    return found


def _vm_document(lab: LabHost, vm: VM) -> dict[str, Any]:
    behaviour = lab.behaviour()
    return vm_document(
        vm,
        vhd_errors=behaviour["vhd_errors"],
        fibre_channel=behaviour["fibre_channel"].get(vm.id.lower(), []),
    )


def _result_document(lab: LabHost, result_kind: str, result: Result) -> dict[str, Any]:
    if result_kind == "checkpoint" and isinstance(result, Checkpoint):
        return {"Checkpoint": wmi_checkpoint_document(result)}
    if result_kind == "reference_point" and isinstance(result, ReferencePoint):
        return {"ReferencePoint": reference_point_document(result)}
    return done_document()


def _method_failure_first(lab: LabHost, op: str, method: str, vm_id: str | None) -> dict[str, Any] | None:
    """A failure set for this call: a refused method raises here; a failing job is returned."""
    failure = lab.take_failure(op, vm_id)
    if failure is not None and not failure["in_job"]:
        raise method_failure(op, method, int(failure["code"]))
    return failure


def _run_job(lab: LabHost, op: str, method: str, vm: VM, result_kind: str, work: Callable[[], Result]) -> dict:
    """A WMI method that may start a job (return value 0 or 4096, docs/HYPERV.md §1)."""
    failure = _method_failure_first(lab, op, method, vm.id)
    failed: WmiJobError | None = None
    result: Result = None
    if failure is not None:
        code = int(failure["code"])
        failed = WmiJobError(op, code, failure["description"] or return_text(code), 10)
    else:
        try:
            result = work()
        except WmiJobError as exc:
            if exc.job_state is None:
                raise
            failed = exc
    behaviour = lab.behaviour()
    polls = int(behaviour["job_polls"]) if behaviour["jobs"] == "async" else 0
    result_id = result.id if result is not None else None
    job = JobStore(lab.directory).start(op, vm.id, result_kind, result_id, polls, failed)
    if job.running:
        return pending_document(job.id, result_kind, JOB_RUNNING, job.percent_complete)
    if failed is not None:
        raise job_failure(op, job.id, job.error_code, job.error_description)
    return _result_document(lab, result_kind, result)


# -- host and inventory ------------------------------------------------------------------------
@operation("get_host")
def get_host(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    return host_document(lab.host_info())


@operation("inventory")
def inventory(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vms = [_vm(lab, params["VmId"])] if params.get("VmId") else lab.inventory()
    return {"VMs": [_vm_document(lab, vm) for vm in vms]}


# -- checkpoints -------------------------------------------------------------------------------
@operation("create_checkpoint")
def create_checkpoint(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(lab, params["VmId"])
    level = ConsistencyLevel(int(params.get("ConsistencyLevel", int(ConsistencyLevel.ApplicationConsistent))))
    skip = bool(params.get("IgnoreNonSnapshottableDisks"))

    def take() -> Checkpoint:  # CreateSnapshot gives Hyper-V's default name; name_checkpoint renames it
        return lab.create_recovery_checkpoint(vm, level, "", skip_unsupported_disks=skip)

    return _run_job(lab, "create_checkpoint", "CreateSnapshot", vm, "checkpoint", take)


@operation("name_checkpoint")
def name_checkpoint(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    checkpoint = _checkpoint(lab, params["VmId"], params["CheckpointId"])
    failure = _method_failure_first(lab, "name_checkpoint", "ModifySystemSettings", checkpoint.vm_id)
    if failure is not None:
        code = int(failure["code"])
        raise job_failure("name_checkpoint", new_job_id(), code, failure["description"] or return_text(code))
    renamed = lab.rename_checkpoint(checkpoint, str(params["Name"]))
    return {"Checkpoint": wmi_checkpoint_document(renamed)}


@operation("checkpoint_disks")
def checkpoint_disks(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    wanted_vm = str(params["VmId"]).lower()
    try:
        checkpoint = lab.find_checkpoint(str(params["CheckpointId"]))
    except ObjectNotFound:
        checkpoint = None
    if checkpoint is None or checkpoint.vm_id.lower() != wanted_vm:
        raise ObjectNotFound(f"VM {params['VmId']} has no checkpoint {params['CheckpointId']}")
    errors = lab.behaviour()["vhd_errors"]
    drives = []
    for disk in lab.checkpoint_disks(checkpoint):
        vm_drive = with_owner(disk.instance_id or "", checkpoint.vm_id)
        drives.append(hard_drive_document(disk, errors.get(vm_drive)))
    return {"HardDrives": drives}


@operation("convert_to_reference_point")
def convert_to_reference_point(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    checkpoint = _checkpoint(lab, params["VmId"], params["CheckpointId"])
    vm = _vm(lab, params["VmId"])
    if checkpoint.type != SnapshotType.Recovery:  # "Only recovery snapshots can be converted"
        raise method_failure("convert_to_reference_point", "ConvertToReferencePoint", RETURN_INVALID_STATE)
    return _run_job(
        lab,
        "convert_to_reference_point",
        "ConvertToReferencePoint",
        vm,
        "reference_point",
        lambda: lab.convert_to_reference_point(checkpoint),
    )


@operation("destroy_checkpoint")
def destroy_checkpoint(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    checkpoint = _checkpoint(lab, params["VmId"], params["CheckpointId"])
    vm = _vm(lab, params["VmId"])

    def destroy() -> None:
        lab.destroy_checkpoint(checkpoint)

    return _run_job(lab, "destroy_checkpoint", "DestroySnapshot", vm, "none", destroy)


# -- reference points --------------------------------------------------------------------------
@operation("list_reference_points")
def list_reference_points(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(lab, params["VmId"])
    return {"ReferencePoints": [reference_point_document(p) for p in lab.list_reference_points(vm)]}


@operation("destroy_reference_point")
def destroy_reference_point(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(lab, params["VmId"])
    point = next(
        (p for p in lab.list_reference_points(vm) if p.id.lower() == str(params["ReferencePointId"]).lower()), None
    )
    if point is None:
        raise ObjectNotFound(f"VM {params['VmId']} has no reference point {params['ReferencePointId']}")
    found = point

    def destroy() -> None:
        lab.destroy_reference_point(found)

    return _run_job(lab, "destroy_reference_point", "DestroyReferencePoint", vm, "none", destroy)


# -- change tracking ---------------------------------------------------------------------------
@operation("changed_ranges")
def changed_ranges(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    path = str(params["Path"])
    failure = lab.take_failure("changed_ranges", lab.vm_of_disk(path))
    if failure is not None:
        code = int(failure["code"])
        if code == RETURN_FILE_NOT_FOUND:
            raise ObjectNotFound(f"GetVirtualDiskChanges: file not found: {path}")
        raise ScriptChangeTrackingError(code)
    try:
        changes, size = lab.changes_since(path, str(params["LimitId"]))
    except ChangeTrackingUnavailable:
        raise ScriptChangeTrackingError(RCT_INVALID_ID) from None
    start = offset = int(params.get("ByteOffset") or 0)
    length = int(params.get("ByteLength") or 0)
    end = min(size, offset + length) if length > 0 else size
    max_ranges = int(params.get("MaxRanges") or QUERY_RANGES)
    deadline = time.monotonic() + float(params.get("MaxSeconds") or 30)
    found: list[tuple[int, int]] = []
    while offset < end and len(found) < max_ranges and time.monotonic() < deadline:
        ranges, processed = query_changes(changes, offset, end, QUERY_WINDOW, QUERY_RANGES)
        if processed == 0:
            break
        found.extend(ranges)
        offset += processed
    return {
        "VirtualSize": size,
        "ByteOffset": start,
        "ProcessedByteLength": offset - start,
        "ChangedByteOffsets": [o for o, _ in found],
        "ChangedByteLengths": [n for _, n in found],
    }


# -- states ------------------------------------------------------------------------------------
@operation("save_vm")
def save_vm(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    lab.save_vm(_vm(lab, params["VmId"]))
    return {"VM": _vm_document(lab, _vm(lab, params["VmId"]))}


@operation("start_vm")
def start_vm(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    lab.start_vm(_vm(lab, params["VmId"]))
    return {"VM": _vm_document(lab, _vm(lab, params["VmId"]))}


@operation("stop_vm")
def stop_vm(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    lab.stop_vm(_vm(lab, params["VmId"]))
    return {"VM": _vm_document(lab, _vm(lab, params["VmId"]))}


@operation("request_shutdown")
def request_shutdown(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(lab, params["VmId"])
    _method_failure_first(lab, "request_shutdown", "InitiateShutdown", vm.id)
    lab.request_shutdown(vm, str(params.get("Reason") or ""))
    return done_document()


# -- housekeeping ------------------------------------------------------------------------------
@operation("list_orphans")
def list_orphans(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(lab, params["VmId"])
    return {"Orphans": [orphan_document(o) for o in lab.list_orphans(vm)]}


@operation("poll_job")
def poll_job(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    job_id = str(params["JobId"])
    if not _JOB_ID.match(job_id):
        raise ObjectNotFound(f"not a job id: {job_id}")
    result_kind = str(params.get("ResultKind") or "none")
    job = JobStore(lab.directory).poll(job_id)
    if job.running:
        return pending_document(job.id, result_kind, JOB_RUNNING, job.percent_complete)
    if job.error_code is not None:
        raise job_failure("poll_job", job.id, job.error_code, job.error_description)
    return _result_document(lab, result_kind, _job_result(lab, job.vm_id, result_kind, job.result_id))


def _job_result(lab: LabHost, vm_id: str, result_kind: str, result_id: str | None) -> Result:
    """Get-HvJobResult: the object the job affected, as it is now."""
    if result_id is None:
        return None
    if result_kind == "checkpoint":
        return lab.find_checkpoint(result_id)
    if result_kind == "reference_point":
        return lab.find_reference_point(vm_id, result_id)
    return None
