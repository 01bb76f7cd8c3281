"""`hvbackup lab ...`: make and drive the built-in lab host (a folder that behaves like Hyper-V)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, emit, handle_errors, human_bytes, progress, stdout

lab_app = typer.Typer(
    help="The lab host: a folder with VMs whose disks are real VHDX files, for demos and tests.\n\n"
    "Example: hvbackup lab create /srv/lab --sample && hvbackup backup --host lab:/srv/lab --all ...",
    no_args_is_help=True,
)

DirArg = Annotated[Path, typer.Argument(help="The lab folder.")]
VmArg = Annotated[str, typer.Argument(help="VM name or id.")]


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


def _open(directory: Path) -> Any:
    from hvbackup.hyperv.lab import LabHost

    return LabHost(directory)


def _vm_row(lab: Any, vm: Any) -> dict[str, Any]:
    record = lab.folder(vm.id).load()
    return {
        "name": vm.name,
        "id": vm.id,
        "state": vm.state.name,
        "guest": record.guest,
        "generation": vm.generation,
        "checkpoint_type": vm.checkpoint_type.name,
        "disks": [d.path for d in vm.disks],
        "checkpoints": [c.name for c in vm.checkpoints],
        "reference_points": len(record.reference_points),
        "workload_pid": record.workload_pid,
    }


def _print_vms(rows: list[dict[str, Any]]) -> None:
    table = Table("VM", "state", "guest", "gen", "disks", "checkpoints", "reference points")
    for r in rows:
        table.add_row(r["name"], r["state"], r["guest"], str(r["generation"]), str(len(r["disks"])),
                      str(len(r["checkpoints"])), str(r["reference_points"]))  # fmt: skip
    stdout.print(table)


@lab_app.command("create")
@handle_errors
def create_cmd(
    directory: DirArg,
    sample: Annotated[
        bool, typer.Option("--sample", help="Add the sample Linux VMs (running ones start writing).")
    ] = False,
    record_digests: Annotated[
        bool, typer.Option("--record-digests", help="Record a sha256 of every frozen disk at each checkpoint (tests).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a lab host folder, optionally with the sample VMs.

    Example: hvbackup lab create /srv/lab --sample
    """
    from hvbackup.hyperv.lab import LabHost
    from hvbackup.hyperv.lab.sample import SAMPLE_VMS, disk_bytes

    total = sum(disk_bytes(s) for s in SAMPLE_VMS) if sample else 0
    with progress("building sample VMs", total, as_json) as bar:
        lab = LabHost.create(directory, sample=sample, record_digests=record_digests,
                             on_sample_vm=lambda spec: bar.advance(disk_bytes(spec)))  # fmt: skip

    def render(result: dict[str, Any]) -> None:
        _print_vms(result["vms"])
        stdout.print(f"lab host ready in {result['directory']}")

    emit({"directory": str(lab.directory), "vms": [_vm_row(lab, vm) for vm in lab.inventory()]}, as_json, render)


@lab_app.command("list")
@handle_errors
def list_cmd(directory: DirArg, as_json: JsonOpt = False) -> None:
    """List the lab's VMs: state, guest kind (agent, stock daemon, none), checkpoints.

    Example: hvbackup lab list /srv/lab --json
    """
    lab = _open(directory)
    emit([_vm_row(lab, vm) for vm in lab.inventory()], as_json, _print_vms)


def _state_command(name: str, verb: str, doc: str) -> None:
    @lab_app.command(name, help=doc)
    @handle_errors
    def command(directory: DirArg, vm: VmArg, as_json: JsonOpt = False) -> None:
        lab = _open(directory)
        model = lab.get_vm(vm)
        started = time.monotonic()
        if verb == "shutdown_vm":
            lab.shutdown_vm(model, timeout=120, interval=0.1)
        else:
            getattr(lab, verb)(model)
        after = lab.get_vm(model.id)
        emit({"vm": after.name, "state": after.state.name, "seconds": round(time.monotonic() - started, 3)}, as_json,
             lambda d: stdout.print(f"{d['vm']}: {d['state']}"))  # fmt: skip


_state_command(
    "start", "start_vm", "Start a VM (or resume it from saved state).\n\nExample: hvbackup lab start /srv/lab web-01"
)
_state_command(
    "stop", "stop_vm", "Turn a VM off at once (pull the plug).\n\nExample: hvbackup lab stop /srv/lab web-01"
)
_state_command("save", "save_vm", "Save a running VM's memory state.\n\nExample: hvbackup lab save /srv/lab web-01")
_state_command(
    "shutdown", "shutdown_vm",
    "Shut the guest down through the Shutdown integration service and wait until it is off.\n\n"
    "Example: hvbackup lab shutdown /srv/lab web-01",
)  # fmt: skip


@lab_app.command("write")
@handle_errors
def write_cmd(
    directory: DirArg,
    vm: VmArg,
    path: Annotated[str, typer.Argument(help="A file inside the guest that the lab writes in place.")],
    text: Annotated[str, typer.Option("--text", help="Bytes to write (UTF-8).")],
    offset: Annotated[int, typer.Option("--offset", help="Byte offset in the file.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Overwrite bytes of a guest file as the running guest would (recorded in change tracking).

    Example: hvbackup lab write /srv/lab web-01 /var/lib/app/data.bin --text "hello" --offset 4096
    """
    lab = _open(directory)
    data = text.encode()
    lab.write_guest_file(vm, path, data, offset)
    result = {"vm": vm, "path": path, "offset": offset, "bytes": len(data)}
    emit(result, as_json, lambda d: stdout.print(f"wrote {human_bytes(d['bytes'])} at {d['offset']} of {path} in {vm}"))


@lab_app.command("reset-rct")
@handle_errors
def reset_rct_cmd(directory: DirArg, vm: VmArg, as_json: JsonOpt = False) -> None:
    """Reset a VM's change tracking, as a host crash does: the next backup reads its disks fully.

    Example: hvbackup lab reset-rct /srv/lab web-01
    """
    _open(directory).reset_change_tracking(vm)
    emit({"vm": vm, "change_tracking": "reset"}, as_json, lambda d: stdout.print(f"{vm}: change tracking reset"))


@lab_app.command("destroy")
@handle_errors
def destroy_cmd(directory: DirArg, as_json: JsonOpt = False) -> None:
    """Stop every lab VM's workload and remove the lab folder.

    Example: hvbackup lab destroy /srv/lab
    """
    lab = _open(directory)
    count = len(lab.folders())
    lab.destroy()
    emit({"directory": str(directory), "removed_vms": count}, as_json,
         lambda d: stdout.print(f"removed the lab in {d['directory']} ({d['removed_vms']} VMs)"))  # fmt: skip
