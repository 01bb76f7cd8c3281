"""`hvbackup lab ...`: make and drive the built-in lab host (a folder that behaves like Hyper-V)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, add_group, emit, handle_errors, human_bytes, progress, stdout
from hvbackup.errors import UsageError

HELP = (
    "The lab host: a folder with VMs whose disks are real VHDX files, for demos and tests.\n\n"
    "Every lab command takes the folder as DIR or as --host lab:DIR, the spec the other commands take.\n\n"
    "Example: hvbackup lab create /srv/lab --sample && hvbackup backup --host lab:/srv/lab --all ..."
)

DirArg = Annotated[str | None, typer.Argument(help="The lab folder (or give --host lab:DIR).", show_default=False)]
VmArg = Annotated[str | None, typer.Argument(help="VM name or id.", show_default=False)]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", "-H", help="The lab as a host spec, lab:DIR, instead of DIR.", show_default=False),
]


def register(app: typer.Typer) -> None:
    add_group(
        app,
        "lab",
        HELP,
        {
            "create": create_cmd,
            "list": list_cmd,
            "start": start_cmd,
            "stop": stop_cmd,
            "save": save_cmd,
            "shutdown": shutdown_cmd,
            "write": write_cmd,
            "reset-rct": reset_rct_cmd,
            "destroy": destroy_cmd,
        },
    )


def _lab_args(host: str | None, positionals: list[str | None], names: list[str]) -> tuple[Path, list[str]]:
    """The lab folder and the arguments after it. With --host lab:DIR the folder is not among the
    positionals, so they arrive one slot to the left; DIR given as well must be the same folder."""
    from hvbackup.connect import parse_spec

    values = [v for v in positionals if v is not None]
    if host is None:
        if not values:
            raise UsageError("give the lab folder: DIR or --host lab:DIR")
        directory, values = values[0], values[1:]
    else:
        spec = parse_spec(host)
        if spec.kind != "lab":
            raise UsageError(f"--host {host} is not a lab host: lab commands take --host lab:DIR")
        directory = spec.path
        if len(values) > len(names):
            if Path(values[0]).resolve() != Path(directory).resolve():
                raise UsageError(f"two lab folders given: {values[0]} and --host {host}; give one")
            values = values[1:]
    if len(values) < len(names):
        raise UsageError(f"missing argument {names[len(values)]}")
    if len(values) > len(names):
        raise UsageError(f"unexpected argument {values[len(names)]!r}")
    return Path(directory), values


def _open(directory: Path) -> Any:
    from hvbackup.lab import LabHost

    return LabHost(directory)


def _check_new_lab_folder(directory: Path) -> None:
    """`lab create` needs a new or empty folder; say which it is when it is not."""
    from hvbackup.lab.folder import LAB_FILE

    if os.path.lexists(directory) and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a folder: give a new folder for the lab")
    if (directory / LAB_FILE).exists():
        raise UsageError(
            f"{directory} is not empty: it is already a lab host; use it (hvbackup lab list {directory}) "
            f"or remove it first (hvbackup lab destroy {directory})"
        )
    if directory.is_dir() and any(directory.iterdir()):
        raise UsageError(f"{directory} exists, is not empty and is not a lab: give a new folder for the lab")


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


@handle_errors
def create_cmd(
    directory: DirArg = None,
    host: HostOpt = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Add the sample Linux VMs (running ones start writing).")
    ] = False,
    record_digests: Annotated[
        bool, typer.Option("--record-digests", help="Record a sha256 of every frozen disk at each checkpoint (tests).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a lab host folder (new or empty), optionally with the sample VMs.

    Example: hvbackup lab create /srv/lab --sample
    """
    from hvbackup.lab import LabHost
    from hvbackup.lab.sample import SAMPLE_VMS, disk_bytes

    folder, _ = _lab_args(host, [directory], [])
    _check_new_lab_folder(folder)
    total = sum(disk_bytes(s) for s in SAMPLE_VMS) if sample else 0
    with progress("building sample VMs", total, as_json) as bar:
        lab = LabHost.create(folder, sample=sample, record_digests=record_digests,
                             on_sample_vm=lambda spec: bar.advance(disk_bytes(spec)))  # fmt: skip

    def render(result: dict[str, Any]) -> None:
        _print_vms(result["vms"])
        stdout.print(f"lab host ready in {result['directory']}")

    emit({"directory": str(lab.directory), "vms": [_vm_row(lab, vm) for vm in lab.inventory()]}, as_json, render)


@handle_errors
def list_cmd(directory: DirArg = None, host: HostOpt = None, as_json: JsonOpt = False) -> None:
    """List the lab's VMs: state, guest kind (agent, stock daemon, none), checkpoints.

    Example: hvbackup lab list /srv/lab --json   (or: hvbackup lab list --host lab:/srv/lab)
    """
    lab = _open(_lab_args(host, [directory], [])[0])
    emit([_vm_row(lab, vm) for vm in lab.inventory()], as_json, _print_vms)


def _state_command(verb: str, doc: str) -> Callable[..., None]:
    @handle_errors
    def command(directory: DirArg = None, vm: VmArg = None, host: HostOpt = None, as_json: JsonOpt = False) -> None:
        folder, (vm,) = _lab_args(host, [directory, vm], ["VM"])
        lab = _open(folder)
        model = lab.get_vm(vm)
        started = time.monotonic()
        if verb == "shutdown_vm":
            lab.shutdown_vm(model, timeout=120, interval=0.1)
        else:
            getattr(lab, verb)(model)
        after = lab.get_vm(model.id)
        emit({"vm": after.name, "state": after.state.name, "seconds": round(time.monotonic() - started, 3)}, as_json,
             lambda d: stdout.print(f"{d['vm']}: {d['state']}"))  # fmt: skip

    command.__doc__ = doc
    return command


start_cmd = _state_command(
    "start_vm", "Start a VM (or resume it from saved state).\n\nExample: hvbackup lab start /srv/lab web-01"
)
stop_cmd = _state_command(
    "stop_vm", "Turn a VM off at once (pull the plug).\n\nExample: hvbackup lab stop /srv/lab web-01"
)
save_cmd = _state_command("save_vm", "Save a running VM's memory state.\n\nExample: hvbackup lab save /srv/lab web-01")
shutdown_cmd = _state_command(
    "shutdown_vm",
    "Shut the guest down through the Shutdown integration service and wait until it is off.\n\n"
    "Example: hvbackup lab shutdown /srv/lab web-01",
)  # fmt: skip


@handle_errors
def write_cmd(
    text: Annotated[str, typer.Option("--text", help="Bytes to write (UTF-8).")],
    directory: DirArg = None,
    vm: VmArg = None,
    path: Annotated[
        str | None, typer.Argument(help="A file inside the guest that the lab writes in place.", show_default=False)
    ] = None,
    host: HostOpt = None,
    offset: Annotated[int, typer.Option("--offset", help="Byte offset in the file.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Overwrite bytes of a guest file as the running guest would (recorded in change tracking).

    Example: hvbackup lab write /srv/lab web-01 /var/lib/app/data.bin --text "hello" --offset 4096
    """
    folder, (vm, path) = _lab_args(host, [directory, vm, path], ["VM", "PATH"])
    lab = _open(folder)
    data = text.encode()
    lab.write_guest_file(vm, path, data, offset)
    result = {"vm": vm, "path": path, "offset": offset, "bytes": len(data)}
    emit(result, as_json, lambda d: stdout.print(f"wrote {human_bytes(d['bytes'])} at {d['offset']} of {path} in {vm}"))


@handle_errors
def reset_rct_cmd(directory: DirArg = None, vm: VmArg = None, host: HostOpt = None, as_json: JsonOpt = False) -> None:
    """Reset a VM's change tracking, as a host crash does: the next backup reads its disks fully.

    Example: hvbackup lab reset-rct /srv/lab web-01
    """
    folder, (vm,) = _lab_args(host, [directory, vm], ["VM"])
    _open(folder).reset_change_tracking(vm)
    emit({"vm": vm, "change_tracking": "reset"}, as_json, lambda d: stdout.print(f"{vm}: change tracking reset"))


@handle_errors
def destroy_cmd(directory: DirArg = None, host: HostOpt = None, as_json: JsonOpt = False) -> None:
    """Stop every lab VM's workload and remove the lab folder.

    Example: hvbackup lab destroy /srv/lab
    """
    folder, _ = _lab_args(host, [directory], [])
    lab = _open(folder)
    count = len(lab.folders())
    lab.destroy()
    emit({"directory": str(directory), "removed_vms": count}, as_json,
         lambda d: stdout.print(f"removed the lab in {d['directory']} ({d['removed_vms']} VMs)"))  # fmt: skip
