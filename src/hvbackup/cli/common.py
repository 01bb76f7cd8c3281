"""What every command shares: options, JSON output, progress, and turning errors into exit codes.

Commands only parse arguments, call into engine/repo/hyperv/..., and print through `emit`.
With `--json` a command prints exactly one JSON document on stdout and nothing else; progress
and messages go to stderr, and progress is hidden.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hvbackup.errors import EXIT_INTERRUPTED, HvBackupError, UsageError
from hvbackup.vocabulary import Downtime, RequiredConsistency

# Piped output (logs, `| tee`) is not hard-wrapped: an error line stays one line.
stdout = Console(soft_wrap=not sys.stdout.isatty())
stderr = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
RepoOpt = Annotated[
    Path,
    typer.Option("--repo", "-r", envvar="HVBACKUP_REPO", help="Repository path (or HVBACKUP_REPO)."),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="The VM or image the snapshot must be of (needed for `latest` when the repository holds several).",
    ),
]
HostOpt = Annotated[
    str,
    typer.Option(
        "--host", "-H", envvar="HVBACKUP_HOST", help="lab:DIR, psrp://user@host[:port], or local (or HVBACKUP_HOST)."
    ),
]

# The policy's choices, so the parser refuses a typo and lists the values.
Consistency = RequiredConsistency
ConsistencyOpt = Annotated[Consistency, typer.Option("--consistency", help="The weakest consistency acceptable.")]
DowntimeOpt = Annotated[
    Downtime, typer.Option("--allow-downtime", help="May a VM be saved or shut down to reach the policy?")
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="Open with a key saved by `hvbackup key export` instead of a passphrase."),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the passphrase from this file (else HVBACKUP_PASSWORD, else a prompt)."),
]


def read_password(password_file: Path | None, *, confirm: bool = False, prompt: str = "Repository passphrase") -> str:
    """The passphrase from --password-file, HVBACKUP_PASSWORD, or an interactive prompt."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read password file {password_file}: {exc.strerror}") from None
        return text.rstrip("\r\n")
    env = os.environ.get("HVBACKUP_PASSWORD")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise UsageError("no passphrase: set HVBACKUP_PASSWORD, pass --password-file, or run in a terminal")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print a command's result: one JSON document, or the human rendering."""
    if as_json:
        text = json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) + "\n"
        # An undecodable byte of a name (a surrogate escape) is printed as the six characters \udcNN,
        # so the document stays valid UTF-8.
        sys.stdout.write(text.encode("utf-8", errors="backslashreplace").decode("utf-8"))
        sys.stdout.flush()
    elif render is not None:
        render(data)
    else:
        stdout.print(data)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# OSErrors a user meets in ordinary use (a full disk, a read-only folder): a message, not a traceback.
_EXPECTED_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into a one-line message and the documented exit code; with
    `--json`, also one JSON document on stdout: {"error": {"code": N, "message": "..."}}."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except HvBackupError as exc:
            fail(str(exc), exc.exit_code, as_json)
        except OSError as exc:
            if exc.errno not in _EXPECTED_OS_ERRORS:
                raise
            fail(describe_os_error(exc), 1, as_json)
        except (KeyboardInterrupt, typer.Abort):
            fail("interrupted", EXIT_INTERRUPTED, as_json)

    return wrapper


def describe_os_error(exc: OSError) -> str:
    """`No space left on device: /srv/repo/chunks/ab/...` — the reason first, then the file."""
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def fail(message: str, code: int, as_json: bool) -> None:
    """Print an error (and its JSON document with --json) and exit with `code`."""
    if as_json:
        emit({"error": {"code": code, "message": message}}, True)
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class ProgressReporter:
    """A byte-count progress bar on stderr; silent with --json or when disabled."""

    def __init__(self, description: str, total: int | None, enabled: bool = True) -> None:
        self._progress: Progress | None = None
        self._task = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
            )
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> ProgressReporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, nbytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, nbytes)

    def set_total(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)


@contextmanager
def progress(description: str, total: int | None, as_json: bool) -> Iterator[ProgressReporter]:
    with ProgressReporter(description, total, enabled=not as_json and stderr.is_terminal) as reporter:
        yield reporter


def register_modules(app: typer.Typer, prefix: str, only: str | None = None) -> None:
    """Let every `hvbackup.cli.<prefix>*` module add its commands to `app`, or just module `only`
    (a command's own module: importing and building the others costs a run a tenth of a second)."""
    import importlib
    import pkgutil

    import hvbackup.cli as pkg

    names = [only] if only else sorted(i.name for i in pkgutil.iter_modules(pkg.__path__) if i.name.startswith(prefix))
    for name in names:
        importlib.import_module(f"hvbackup.cli.{name}").register(app)


def add_group(app: typer.Typer, name: str, help: str, commands: dict[str, Callable[..., Any]]) -> None:
    """`hvbackup NAME COMMAND`: a group of commands, each registered as `app.command` does.

    Every module registers its commands in its `register(app)`: `app.command(NAME)(function)`
    for a command of its own, `add_group` for a group; the help's `Example:` comes with it."""
    group = typer.Typer(help=help, no_args_is_help=True)
    for command, function in commands.items():
        group.command(command)(function)
    app.add_typer(group, name=name)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def open_repository(repo_path: Path, password_file: Path | None, key_file: Path | None = None):
    """Open the repository the way every command does: exported key file, or passphrase.

    Returns a hvbackup.repo.Repository (imported here lazily, to keep `--help` quick).
    """
    from hvbackup.repo import Repository
    from hvbackup.repo.crypto import KeyMaterial

    Repository.read_config(repo_path)  # a missing repository is reported before asking for a passphrase
    if key_file is not None:
        try:
            _repo_id, key = KeyMaterial.import_(key_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read key file {key_file}: {exc.strerror}") from None
        except (ValueError, KeyError) as exc:
            raise UsageError(f"{key_file} is not an exported hvbackup key ({exc})") from None
        return Repository.open(repo_path, key=key)
    return Repository.open(repo_path, read_password(password_file))


@dataclasses.dataclass(frozen=True)
class RepoAccess:
    """What a command's repository options (RepoOpt, PasswordFileOpt, KeyFileOpt) say."""

    repo: Path
    password_file: Path | None = None
    key_file: Path | None = None

    def open(self):
        return open_repository(self.repo, self.password_file, self.key_file)
