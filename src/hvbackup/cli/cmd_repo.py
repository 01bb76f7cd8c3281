"""Repository commands: init, key, snapshots, check, forget, protect, prune, unlock, repo."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.markup import escape
from rich.table import Table

from hvbackup.cli.common import (
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoOpt,
    add_group,
    emit,
    handle_errors,
    human_bytes,
    open_repository,
    progress,
    read_password,
    stderr,
    stdout,
)
from hvbackup.durations import parse_duration, parse_seconds
from hvbackup.errors import EXIT_FAILED, UsageError
from hvbackup.repo import Repository
from hvbackup.repo.check import CheckReport, check
from hvbackup.repo.config import DEFAULT_CHUNK_SIZE
from hvbackup.repo.crypto import CIPHERS
from hvbackup.repo.forget import forget, forget_snapshots
from hvbackup.repo.keys import write_key_file
from hvbackup.repo.prune import DEFAULT_SAFETY_WINDOW, PruneResult, check_wait, prune
from hvbackup.repo.retention import KeepPolicy


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise UsageError(f"bad size {text!r}; use e.g. 4MiB, 1M, 65536")
    return int(match.group(1)) * 1024 ** " KMG".index(match.group(2).upper() or " ")


@contextmanager
def _status(message: str, as_json: bool) -> Iterator[None]:
    """A spinner on stderr for work of unknown length (none with --json or without a terminal)."""
    if as_json or not stderr.is_terminal:
        yield
        return
    with stderr.status(message):
        yield


def _local_time(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


# Ids are copied into the next command and times read at a glance: never wrapped, and no column is cut.
_NO_WRAP = {"id", "time"}


def _print_table(headers: list[str], rows: list[list[str]], *, drop_order: list[str]) -> None:
    """A table that fits the terminal without cutting anything: empty columns are left out, then
    the columns in `drop_order`, first to last, until it fits, and a line says which; what is
    left wraps, never `…`."""
    empty = {name for i, name in enumerate(headers) if rows and not any(row[i] for row in rows)}
    shown = [name for name in headers if name not in empty]
    for name in [None, *(d for d in drop_order if d in shown)]:
        if name is not None:
            shown.remove(name)
        if _table_width(headers, rows, shown) <= stdout.width:
            break
    table = Table(*shown)
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = column.header in _NO_WRAP
    positions = [headers.index(name) for name in shown]
    for row in rows:
        table.add_row(*(escape(row[i]) for i in positions))
    stdout.print(table, highlight=False)
    hidden = [name for name in headers if name not in shown and name not in empty]
    if hidden:
        stdout.print(f"[dim]({', '.join(hidden)} not shown at this width; --json has everything)[/]")


def _table_width(headers: list[str], rows: list[list[str]], shown: list[str]) -> int:
    """The width rich's default box takes for these columns unwrapped: each cell padded by one
    space on both sides, and a rule before each column and after the last."""
    widths = [max([cell_len(name), *(cell_len(row[headers.index(name)]) for row in rows)]) for name in shown]
    return sum(widths) + 3 * len(widths) + 1


# -- init and keys -------------------------------------------------------------------------


@handle_errors
def init_cmd(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    chunk_size: Annotated[str, typer.Option(help="Chunk size, a power of two (default 4MiB).")] = "4MiB",
    cipher: Annotated[str, typer.Option(help=f"AEAD cipher: {', '.join(CIPHERS)}.")] = "aes-256-gcm",
    as_json: JsonOpt = False,
) -> None:
    """Create a repository.

    Example: HVBACKUP_PASSWORD=... hvbackup init --repo /srv/hvbackup
    """
    size = parse_size(chunk_size) if chunk_size else DEFAULT_CHUNK_SIZE
    password = read_password(password_file, confirm=True)
    if not password:
        raise UsageError("the passphrase must not be empty")
    with Repository.init(repo, password, chunk_size=size, cipher=cipher) as r:
        result = {"repository": str(repo), "id": r.id, "chunk_size": r.chunk_size, "cipher": r.config.cipher}
    emit(
        result,
        as_json,
        lambda d: stdout.print(
            f"created repository {d['id']} at {d['repository']} ({human_bytes(d['chunk_size'])} chunks, {d['cipher']}).\n"
            "Without the passphrase or an exported key (hvbackup key export) the backups cannot be read."
        ),
    )


KEY_HELP = (
    "Manage the passphrases (key slots) that open the repository.\n\nExample: hvbackup key list --repo /srv/hvbackup"
)


def _new_password(new_password_file: Path | None) -> str:
    if new_password_file is not None:
        return read_password(new_password_file)
    env = os.environ.get("HVBACKUP_NEW_PASSWORD")
    if env is not None:
        return env
    if not os.isatty(0):
        raise UsageError("no new passphrase: set HVBACKUP_NEW_PASSWORD, pass --new-password-file, or use a terminal")
    return typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)


@handle_errors
def key_add(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    new_password_file: Annotated[
        Path | None, typer.Option(help="The new passphrase (else HVBACKUP_NEW_PASSWORD, else a prompt).")
    ] = None,
    label: Annotated[str, typer.Option(help="A note stored with the slot, e.g. who holds it.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a passphrase that opens the repository.

    Example: HVBACKUP_NEW_PASSWORD=... hvbackup key add --repo /srv/hvbackup --label "second admin"
    """
    with open_repository(repo, password_file, key_file) as r:
        password = _new_password(new_password_file)
        if not password:
            raise UsageError("the passphrase must not be empty")
        slot = r.add_key_slot(password, label)
    emit(slot.to_json(), as_json, lambda d: stdout.print(f"added key slot {d['id']}"))


@handle_errors
def key_list(
    repo: RepoOpt, password_file: PasswordFileOpt = None, key_file: KeyFileOpt = None, as_json: JsonOpt = False
) -> None:
    """List the key slots.

    Example: hvbackup key list --repo /srv/hvbackup
    """
    with open_repository(repo, password_file, key_file) as r:
        slots = [dict(s.to_json(), current=s.slot_id == r.slot_id) for s in r.key_slots()]

    def render(rows: list[dict]) -> None:
        _print_table(
            ["id", "created", "host", "label", "kdf"],
            [
                [
                    row["id"],
                    _local_time(row["created"]) if row["created"] else "",
                    row["hostname"],
                    row["label"],
                    row["kdf"],
                ]
                for row in rows
            ],
            drop_order=["kdf", "host"],
        )
        current = next((row["id"] for row in rows if row["current"]), None)
        count = "1 key slot" if len(rows) == 1 else f"{len(rows)} key slots"
        stdout.print(count + (f"; this passphrase opens {current}" if current else ""))

    emit(slots, as_json, render)


@handle_errors
def key_remove(
    slot: Annotated[str, typer.Argument(help="The slot id or a unique prefix of it (see key list).")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a key slot (not the last one, nor the one in use).

    Example: hvbackup key remove 3f2a9c0d --repo /srv/hvbackup
    """
    with open_repository(repo, password_file, key_file) as r:
        removed = r.remove_key_slot(slot)
    emit({"removed": removed}, as_json, lambda d: stdout.print(f"removed key slot {d['removed']}"))


@handle_errors
def key_export(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this new file (mode 0600).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file given with -o if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the repository's raw key material for safekeeping (a JSON document).

    Anyone holding it can read every backup. Open with it: hvbackup snapshots --repo R --key-file FILE.
    Example: hvbackup key export --repo /srv/hvbackup -o /safe/place/hvbackup.key
    """
    if output is not None and output.exists() and not force:
        raise UsageError(f"{output} exists; refusing to overwrite it (use --force to replace it)")
    with open_repository(repo, password_file, key_file) as r:
        text = r.export_key()
    if output is not None:
        write_key_file(output, text, force=force)
        emit({"written": str(output)}, as_json, lambda d: stderr.print(f"key written to {d['written']}"))
        return
    typer.echo(text)


# -- snapshots, protect --------------------------------------------------------------------


@handle_errors
def snapshots_cmd(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    source: Annotated[str | None, typer.Option(help="Only snapshots of this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List snapshots, oldest first.

    Example: hvbackup snapshots --repo /srv/hvbackup --source web01
    """
    with open_repository(repo, password_file, key_file) as r:
        infos = [i.to_json() for i in r.list_snapshots() if source is None or i.source == source]

    def render(rows: list[dict]) -> None:
        _print_table(
            ["id", "time", "source", "disks", "mode", "consistency", "protected"],
            [
                [
                    row["short_id"],
                    _local_time(row["time"]),
                    row["source"],
                    ", ".join(row["disks"]),
                    str(row["manifest"].get("mode", "")),
                    str(row["manifest"].get("consistency", "")),
                    "yes" if row["protected"] else "",
                ]
                for row in rows
            ],
            drop_order=["consistency", "mode", "disks"],
        )
        stdout.print(f"{len(rows)} snapshots")

    emit(infos, as_json, render)


def _set_protected(
    repo: Path, password_file: Path | None, key_file: Path | None, ref: str, on: bool, as_json: bool
) -> None:
    with open_repository(repo, password_file, key_file) as r:
        info = r.set_protected(ref, on)
    state = "protected" if on else "no longer protected"
    emit(
        {"id": info.id, "protected": info.protected},
        as_json,
        lambda d: stdout.print(f"snapshot {d['id'][:8]} is {state}"),
    )


@handle_errors
def protect_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or latest.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Protect a snapshot: forget and prune never remove it.

    Example: hvbackup protect 3080099f --repo /srv/hvbackup
    """
    _set_protected(repo, password_file, key_file, snapshot, True, as_json)


@handle_errors
def unprotect_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or latest.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a snapshot's protection.

    Example: hvbackup unprotect 3080099f --repo /srv/hvbackup
    """
    _set_protected(repo, password_file, key_file, snapshot, False, as_json)


# -- check -----------------------------------------------------------------------------------


def parse_subset(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", text)
    if match is None or not 0 < float(match.group(1)) <= 100:
        raise UsageError(f"bad subset {text!r}; use a percentage such as 10%")
    return float(match.group(1)) / 100


@handle_errors
def check_cmd(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    read_data: Annotated[bool, typer.Option("--read-data", help="Also decrypt and re-hash the chunks.")] = False,
    subset: Annotated[str | None, typer.Option(help="With --read-data, read only this share, e.g. 10%.")] = None,
    workers: Annotated[int, typer.Option(help="Threads reading chunks.")] = 4,
    as_json: JsonOpt = False,
) -> None:
    """Check the repository's structure and, with --read-data, its data. Exit 1 on damage.

    Example: hvbackup check --repo /srv/hvbackup --read-data --subset 10%
    """
    if subset and not read_data:
        raise UsageError("--subset chooses the chunks --read-data reads; give --read-data too")
    share = parse_subset(subset) if subset else None
    with open_repository(repo, password_file, key_file) as r, progress("Reading chunks", None, as_json) as bar:
        report = check(r, read_data=read_data, subset=share, workers=workers, progress=bar)
    emit(report.to_json(), as_json, lambda _: _render_check(report))
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _render_check(report: CheckReport) -> None:
    stdout.print(
        f"{report.snapshots} snapshots, {report.indexes} disk indexes, "
        f"{report.chunks_referenced} chunks referenced"
        + (f", {report.chunks_read} read and verified" if report.read_data else "")
    )
    for error in report.errors:
        stdout.print(f"[red]error:[/] {escape(error)}", highlight=False)
    for problem in report.chunks:
        stdout.print(f"[red]{problem.problem} chunk[/] {problem.chunk_id}: {escape(problem.reason)}", highlight=False)
        for use in problem.used_by:
            stdout.print(
                f"  used by snapshot {use.snapshot[:8]} ({escape(use.source)}, {_local_time(use.time)}) "
                f"disk {use.disk} at {len(use.offsets)} offset(s), first {use.offsets[0]}",
                highlight=False,
            )
    if report.ok:
        stdout.print("[green]no errors found[/]")
    else:
        damaged = ", ".join(s[:8] for s in report.damaged_snapshots) or "none"
        stdout.print(f"[red]damage found[/]; damaged snapshots: {damaged}")


# -- forget, prune, unlock -----------------------------------------------------------------


def _render_forget(rows: list[dict], dry_run: bool) -> None:
    removed = "would remove" if dry_run else "removed"
    _print_table(
        ["id", "time", "source", "action", "reason"],
        [
            [
                row["short_id"],
                _local_time(row["time"]) if row["time"] else "?",
                row["source"] if row["source"] is not None else "(manifest unreadable)",
                "keep" if row["keep"] else removed,
                "; ".join(row["reasons"]),
            ]
            for row in rows
        ],
        drop_order=["reason"],
    )


def _render_prune(result: PruneResult) -> None:
    verb = "would delete" if result.dry_run else "deleted"
    stdout.print(
        f"{result.snapshots} snapshots reference {result.chunks_referenced} of {result.chunks_total} chunks; "
        f"{verb} {result.chunks_deleted} chunks ({human_bytes(result.bytes_deleted)}); "
        f"kept {result.chunks_kept_young} unreferenced chunks younger than the safety window; "
        f"{result.objects_cleaned} leftover objects cleaned"
    )


SafetyOpt = Annotated[
    str,
    typer.Option(
        metavar="DURATION",
        help="Keep unreferenced chunks younger than this, e.g. 1h, 30min, 90s (units w d h min s; "
        "`m` is refused: write min).",
    ),
]
WaitOpt = Annotated[float, typer.Option(help="Wait up to this many seconds for running backups to finish.")]


@handle_errors
def forget_cmd(
    repo: RepoOpt,
    snapshots: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID]...",
            show_default=False,
            help="Forget exactly these snapshots (id or unique prefix), also ones whose manifest "
            "is damaged, instead of applying keep rules.",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    keep_last: Annotated[int | None, typer.Option(metavar="N", help="Keep the newest N snapshots.")] = None,
    keep_hourly: Annotated[
        int | None, typer.Option(metavar="N", help="Keep the newest snapshot of each of the last N hours.")
    ] = None,
    keep_daily: Annotated[int | None, typer.Option(metavar="N", help="... of each of the last N days.")] = None,
    keep_weekly: Annotated[int | None, typer.Option(metavar="N", help="... of each of the last N ISO weeks.")] = None,
    keep_monthly: Annotated[int | None, typer.Option(metavar="N", help="... of each of the last N months.")] = None,
    keep_yearly: Annotated[int | None, typer.Option(metavar="N", help="... of each of the last N years.")] = None,
    keep_within: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Keep all within this long of the newest, e.g. 7d, 1y6mo (units y mo w d h min s; "
            "`m` is refused: write mo or min).",
        ),
    ] = None,
    keep_none: Annotated[
        bool,
        typer.Option(
            "--keep-none", help="Forget every unprotected snapshot (of --source, if given); no keep rule may be given."
        ),
    ] = False,
    source: Annotated[str | None, typer.Option(help="Only snapshots of this source.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would be removed.")] = False,
    then_prune: Annotated[bool, typer.Option("--prune", help="Run prune afterwards.")] = False,
    safety_window: SafetyOpt = "1h",
    wait: WaitOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove snapshots that no keep rule keeps, per source, or the snapshots named. Protected snapshots stay.

    A keep count must be 1 or more; forgetting every snapshot of a source needs --keep-none.
    Example: hvbackup forget --repo /srv/hvbackup --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
    Example: hvbackup forget 3080099f --repo /srv/hvbackup --prune
    """
    policy = KeepPolicy.from_options(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=parse_duration(keep_within, "--keep-within") if keep_within else None,
    )
    if snapshots and (not policy.is_empty() or keep_none or source is not None):
        raise UsageError("give either snapshot ids or keep rules (--keep-*, --keep-none, --source), not both")
    window = parse_seconds(safety_window, "--safety-window")
    check_wait(wait)
    with open_repository(repo, password_file, key_file) as r:
        if snapshots:
            decisions: list[Any] = forget_snapshots(r, snapshots, dry_run=dry_run)
        else:
            decisions = forget(r, policy, source=source, dry_run=dry_run, keep_none=keep_none)
        pruned = prune(r, safety_window=window, wait=wait) if then_prune and not dry_run else None
    result: dict[str, Any] = {"dry_run": dry_run, "snapshots": [d.to_json() for d in decisions]}
    if pruned is not None:
        result["prune"] = pruned.to_json()

    def render(_: Any) -> None:
        _render_forget(result["snapshots"], dry_run)
        if pruned is not None:
            _render_prune(pruned)

    emit(result, as_json, render)


@handle_errors
def prune_cmd(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    safety_window: SafetyOpt = "1h",
    wait: WaitOpt = 0.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Count what would be deleted.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete chunks no snapshot uses (mark and sweep). Refuses while a backup holds a lease.

    Example: hvbackup prune --repo /srv/hvbackup --wait 600
    """
    window = parse_seconds(safety_window, "--safety-window") if safety_window else DEFAULT_SAFETY_WINDOW
    with open_repository(repo, password_file, key_file) as r, progress("Deleting chunks", None, as_json) as bar:
        result = prune(r, safety_window=window, wait=wait, dry_run=dry_run, progress=bar)
    emit(result.to_json(), as_json, lambda _: _render_prune(result))


@handle_errors
def unlock_cmd(
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Remove every lock, also of live processes.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove stale locks (of processes that are gone), or with --force all locks.

    Example: hvbackup unlock --repo /srv/hvbackup
    """
    with open_repository(repo, password_file, key_file) as r:
        if force:
            removed = r.locks.list()
            for lock in removed:
                r.locks.remove(lock)
        else:
            removed = r.locks.remove_stale()
        remaining = r.locks.list()
    result = {"removed": [lock.to_json() for lock in removed], "remaining": [lock.to_json() for lock in remaining]}

    def render(_: Any) -> None:
        for lock in removed:
            stdout.print(f"removed {escape(lock.describe())}", highlight=False)
        for lock in remaining:
            stdout.print(f"still held: {escape(lock.describe())}", highlight=False)
        if not removed and not remaining:
            stdout.print("no locks")

    emit(result, as_json, render)


REPO_HELP = "Repository maintenance.\n\nExample: hvbackup repo rebuild-cache --repo /srv/hvbackup"


@handle_errors
def rebuild_cache_cmd(
    repo: RepoOpt, password_file: PasswordFileOpt = None, key_file: KeyFileOpt = None, as_json: JsonOpt = False
) -> None:
    """Rebuild the local chunk cache from the repository alone.

    Example: hvbackup repo rebuild-cache --repo /srv/hvbackup
    """
    with open_repository(repo, password_file, key_file) as r:
        with r.backup_lease("rebuild cache"), _status("Listing the repository's chunks", as_json):
            count = r.rebuild_cache()
    emit({"chunks": count}, as_json, lambda d: stdout.print(f"cache rebuilt: {d['chunks']} chunks"))


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    add_group(
        app,
        "key",
        KEY_HELP,
        {
            "add": key_add,
            "list": key_list,
            "remove": key_remove,
            "export": key_export,
        },
    )
    app.command("snapshots")(snapshots_cmd)
    app.command("check")(check_cmd)
    app.command("forget")(forget_cmd)
    app.command("protect")(protect_cmd)
    app.command("unprotect")(unprotect_cmd)
    app.command("prune")(prune_cmd)
    app.command("unlock")(unlock_cmd)
    add_group(
        app,
        "repo",
        REPO_HELP,
        {
            "rebuild-cache": rebuild_cache_cmd,
        },
    )
