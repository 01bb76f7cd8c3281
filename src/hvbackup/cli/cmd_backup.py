"""`hvbackup backup` and `hvbackup restore`: whole Linux VMs on a Hyper-V host or the lab."""

from __future__ import annotations

from pathlib import Path  # noqa: F401  (typer reads the annotations)
from typing import Annotated

import typer
from rich import box
from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hvbackup.cli.common import (
    Consistency,
    Downtime,
    HostOpt,
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoAccess,
    RepoOpt,
    SourceOpt,
    emit,
    handle_errors,
    human_bytes,
    open_repository,
    progress,
    stderr,
    stdout,
)
from hvbackup.cli.one_disk_restore import (
    AllowDamagedOpt,
    BlockSizeOpt,
    DiskOpt,
    DiskTarget,
    FormatOpt,
    OverwriteOpt,
    ToOpt,
    VerifyOpt,
    print_damaged,
    restore_one_disk,
)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)


@handle_errors
def backup_cmd(
    host: HostOpt,
    repo: RepoOpt,
    vms: Annotated[list[str] | None, typer.Argument(help="VM names or ids.")] = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    all_vms: Annotated[bool, typer.Option("--all", help="Every VM on the host.")] = False,
    consistency: Annotated[
        Consistency, typer.Option(help="The weakest consistency acceptable.")
    ] = Consistency.filesystem,
    allow_downtime: Annotated[
        Downtime, typer.Option(help="May a VM be saved or shut down to reach the policy?")
    ] = Downtime.never,
    parallel: Annotated[int, typer.Option(help="VMs backed up at the same time (at least 1).")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Back up Linux VMs in the best mode each allows under the policy.

    Exit code 0 when every VM met the policy, 3 when some did not (below policy, skipped disks,
    failed), 1 when no VM got a snapshot, 11 when every VM is being backed up by another run.

    Example: hvbackup backup --host lab:/srv/lab --repo /srv/repo --all --consistency application --allow-downtime save
    """
    from hvbackup.assess.policy import Policy
    from hvbackup.connect import connect
    from hvbackup.engine.vm_backup import backup_vms, select_vms

    policy = Policy(consistency=consistency, allow_downtime=allow_downtime)
    with connect(host) as hv, open_repository(repo, password_file, key_file) as repository:
        selected = select_vms(hv, vms or [], all_vms)
        with _VmBars(enabled=not as_json and stderr.is_terminal) as bars:

            def done(result) -> None:
                bars.finish(result.vm_id)
                if not as_json:
                    stderr.print(_done_line(result.to_json()), highlight=False)

            run = backup_vms(
                hv, repository, selected, policy, parallel=parallel, progress_for=bars.for_vm, on_done=done
            )
    emit(run.to_json(), as_json, _render_run)
    raise typer.Exit(run.exit_code)


def _colour(vm: dict) -> str:
    return "green" if vm["result"] == "ok" else "yellow" if vm["snapshot"] else "red"


def _done_line(vm: dict) -> str:
    snapshot = f", snapshot {vm['short_snapshot']}" if vm["short_snapshot"] else ""
    message = f" — {vm['message']}" if vm["message"] else ""
    return f"[{_colour(vm)}]{vm['name']}: {vm['result']}[/] {vm['mode']}, {vm['consistency']}{snapshot}{message}"


class _WhileReading(ProgressColumn):
    """A column shown only while the VM reads a disk; a phase without a size shows just its name."""

    def __init__(self, inner: ProgressColumn) -> None:
        super().__init__()
        self.inner = inner

    def render(self, task) -> RenderableType:
        return self.inner.render(task) if task.fields.get("reading") else Text("")


class _VmBars:
    """One line per VM on stderr: its phase (checkpoint, reading disk N of M, committing) and
    the bar of the disk it reads. Hidden with --json or when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        columns = (BarColumn(bar_width=24), DownloadColumn(binary_units=True), TimeRemainingColumn())
        self.progress = (
            Progress(
                TextColumn("{task.description}"), *(_WhileReading(c) for c in columns), console=stderr, transient=True
            )
            if enabled
            else None
        )
        self.tasks: dict[str, TaskID | None] = {}

    def __enter__(self) -> _VmBars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def for_vm(self, vm) -> _VmBar:
        task = self.progress.add_task(vm.name, total=None) if self.progress is not None else None
        self.tasks[vm.id] = task
        return _VmBar(self.progress, task, vm.name)

    def finish(self, vm_id: str) -> None:
        task = self.tasks.pop(vm_id, None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)


class _VmBar:
    def __init__(self, progress: Progress | None, task, name: str) -> None:
        self.progress, self.task, self.name = progress, task, name

    def phase(self, text: str) -> None:
        if self.progress is not None:
            self.progress.reset(self.task, description=f"{self.name}: {text}", reading=False)

    def set_total(self, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total, reading=True)

    def advance(self, nbytes: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, nbytes)


class _Summed:
    """Several disks feed one bar: totals add up as each disk announces its own."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.total = 0

    def set_total(self, total: int) -> None:
        self.total += total
        self.bar.set_total(self.total)

    def advance(self, nbytes: int) -> None:
        self.bar.advance(nbytes)


def _render_run(data: dict) -> None:
    """The run as a table that fits 80 columns; each VM's message and warnings below it."""
    table = Table(
        title=f"backup run ({data['duration_s']:.1f} s)", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0)
    )
    for col in ("VM", "snapshot", "mode", "consistency", "read", "new", "unchanged", "result"):
        table.add_column(
            col,
            justify="right" if col in ("read", "new", "unchanged") else "left",
            overflow="fold",
            no_wrap=col != "VM",
        )
    for vm in data["vms"]:
        table.add_row(
            vm["name"],
            vm["short_snapshot"] or "-",
            vm["mode"],
            vm["consistency"],
            _size(vm["bytes_read"]),
            _size(vm["bytes_new"]),
            _size(vm["bytes_unchanged"]),
            f"[{_colour(vm)}]{vm['result']}[/]",
        )
    stdout.print(table)
    for vm in data["vms"]:
        if vm["message"]:
            stdout.print(f"{vm['name']}: {vm['message']}", highlight=False)
        for warning in vm["warnings"]:
            stdout.print(f"[yellow]{vm['name']}:[/] {warning}", highlight=False)


def _size(n: int) -> str:
    """human_bytes in at most 6 characters: '0', '512K', '12.3M', '1.1G'."""
    if n == 0:
        return "0"
    text = human_bytes(n)
    number, unit = text.split(" ")
    if unit == "B":
        return f"{number}B"
    value = float(number)
    return f"{value:.0f}{unit[0]}" if value >= 100 else f"{value:.1f}{unit[0]}"


@handle_errors
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, SOURCE:latest, or 'latest'.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    source: SourceOpt = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Restore as a new VM on this host.")] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Name of the new VM; refused if a VM has it (default: <name>-restored-<id>, then -2, -3...)."
        ),
    ] = None,
    keep_macs: Annotated[
        bool, typer.Option(help="Keep the original MAC addresses (refused while a VM on the host uses one).")
    ] = False,
    no_start: Annotated[bool, typer.Option("--no-start", help="Leave the new VM off.")] = False,
    destination: Annotated[
        str | None,
        typer.Option(
            help="Host folder for the new VM's disks: D:\\VMs\\x (written over \\\\HOST\\D$) or \\\\server\\share\\dir "
            "(default: the VM's original folder when free, else the host's virtual disk folder\\NAME)."
        ),
    ] = None,
    switch: Annotated[
        str | None, typer.Option(help="Connect every network adapter to this virtual switch of the host.")
    ] = None,
    import_config: Annotated[
        bool,
        typer.Option(
            help="Build the VM with Import-VM (a copy, new id) from the configuration files the snapshot "
            "captured (.vmcx, .vmgs: NVRAM and vTPM kept), instead of from the recorded settings."
        ),
    ] = False,
    disk: DiskOpt = None,
    to: ToOpt = None,
    fmt: FormatOpt = None,
    block_size_mib: BlockSizeOpt = None,
    verify: VerifyOpt = False,
    allow_damaged: AllowDamagedOpt = False,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a VM snapshot as a new VM, or one of its disks to a file.

    One disk (--disk N --to FILE) is restored exactly as `hvbackup image restore` does it, with
    the same options. Exit code 3 when --allow-damaged zero-filled damaged or missing data.

    Example: hvbackup restore web-01:latest --host lab:/srv/lab --repo /srv/repo --name web-01-test
    Example: hvbackup restore latest --source web-01 --disk scsi0-0 --to web-01.vhdx --repo /srv/repo
    """
    from hvbackup.errors import UsageError

    one_disk = to is not None or disk is not None
    if one_disk and to is None:
        raise UsageError("--disk needs --to FILE")
    disk_only = {"--overwrite": overwrite, "--verify": verify, "--format": fmt, "--block-size-mib": block_size_mib}
    given = next((option for option, value in disk_only.items() if value), None)
    if given and not one_disk:
        raise UsageError(f"{given} applies to --disk N --to FILE; a whole VM is always restored as a new VM")
    if to is not None:  # one disk: --disk without --to was refused above
        target = DiskTarget(
            to=to,
            disk=disk,
            fmt=fmt,
            block_size_mib=block_size_mib,
            verify=verify,
            allow_damaged=allow_damaged,
            overwrite=overwrite,
        )
        restore_one_disk(RepoAccess(repo, password_file, key_file), snapshot, source, target, as_json)
        return
    if host is None:
        raise UsageError("give --host to restore the whole VM, or --disk N --to FILE for one disk")
    with open_repository(repo, password_file, key_file) as repository:
        snap = repository.load_snapshot(snapshot, source)
        from hvbackup.connect import connect
        from hvbackup.engine.vm_restore import restore_vm

        with connect(host) as hv, progress("restore", None, as_json) as bar:
            result = restore_vm(
                hv,
                repository,
                snap,
                name=name,
                keep_macs=keep_macs,
                start=not no_start,
                allow_damaged=allow_damaged,
                destination=destination,
                switch=switch,
                import_config=import_config,
                progress=_Summed(bar),
            )
    emit({"snapshot": snap.info.id, "short_id": snap.info.short_id, **result.to_json()}, as_json, _render_vm_restore)
    _exit_partial_if_damaged(result.disks)


def _exit_partial_if_damaged(disks) -> None:
    """Exit 3 when --allow-damaged zero-filled anything, as `image restore` does."""
    from hvbackup.errors import PartialFailure

    if any(d.damaged for d in disks):
        raise typer.Exit(PartialFailure.exit_code)


def _render_vm_restore(data: dict) -> None:
    stdout.print(
        f"restored snapshot {data['short_id']} as VM {data['name']} ({data['vm_id']}) with "
        f"{len(data['disks'])} disk(s)" + (", started" if data["started"] else ""),
        highlight=False,
    )
    for disk in data["disks"]:
        print_damaged(disk["damaged"])
