"""Copy files out of a snapshot filesystem into a local folder, as `cp -a` would.

Kept: contents (holes stay holes), mode, owner (when run as root), access and modification
times, symlinks (never followed) and hard links (a second name of an inode becomes os.link).
Nothing is ever written outside the target folder: every path is built from checked names,
parents must be real directories, files are created with O_NOFOLLOW and, unless `overwrite`,
with O_EXCL.
"""

from __future__ import annotations

import os
import stat as st
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hvbackup.directio import DirectWriter
from hvbackup.engine.files.errors import TargetNotWritable, UnsafeTarget
from hvbackup.fs.filesystem import Entry, FileSystem, _show
from hvbackup.zeros import is_zero

BLOCK = 4 * 1024 * 1024
HOLE_GRAIN = 64 * 1024  # zero runs of this size and alignment become holes


@dataclass
class ExtractResult:
    target: str
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    specials: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["seconds"] = round(self.seconds, 3)
        data["bytes_per_s"] = round(self.bytes / self.seconds) if self.seconds else 0
        return data


class Extractor:
    def __init__(
        self,
        fs: FileSystem,
        target: Path,
        *,
        overwrite: bool = False,
        keep_owner: bool | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.fs = fs
        self.target = Path(os.path.abspath(target))
        self.overwrite = overwrite
        self.keep_owner = os.geteuid() == 0 if keep_owner is None else keep_owner
        self.on_bytes = on_bytes or (lambda n: None)
        self.result = ExtractResult(target=str(self.target))
        self._links: dict[tuple[int, int], Path] = {}
        self._dir_times: list[tuple[Path, Entry]] = []

    def run(self, top: Entry) -> ExtractResult:
        started = time.monotonic()
        self._prepare_target()
        plan = self._plan(top)
        self._check_targets(plan)
        for entry, dest in plan:
            self._extract_one(entry, dest)
        for path, entry in reversed(self._dir_times):
            self._set_metadata(path, entry)
        self.result.seconds = time.monotonic() - started
        return self.result

    def _prepare_target(self) -> None:
        """The target folder, created if missing, and writable: checked before anything is written."""
        if os.path.lexists(self.target) and not os.path.isdir(self.target):
            raise UnsafeTarget(f"--to {self.target} is a file, not a folder: give a folder to extract into")
        try:
            self.target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetNotWritable(f"cannot create the folder {self.target}: {exc.strerror}") from None
        if not os.access(self.target, os.W_OK | os.X_OK):
            readonly = os.statvfs(self.target).f_flag & os.ST_RDONLY
            why = "it is on a read-only filesystem" if readonly else "permission denied"
            raise TargetNotWritable(f"cannot write into {self.target}: {why}")

    def _plan(self, top: Entry) -> list[tuple[Entry, Path]]:
        """Every entry below `top` with the path it gets under the target, in walk order."""
        base = self.target if top.path == b"/" else self.target / os.fsdecode(_checked(top.name))
        top_depth = top.path.rstrip(b"/").count(b"/")
        plan = []
        for entry in self.fs.walk(top):
            rel = entry.path.split(b"/")[top_depth + 1 :] if top.path != b"/" else entry.path.split(b"/")[1:]
            dest = base.joinpath(*(os.fsdecode(_checked(p)) for p in rel if p))
            if dest != self.target:  # extracting "/" fills the target itself
                plan.append((entry, dest))
        return plan

    def _check_targets(self, plan: list[tuple[Entry, Path]]) -> None:
        """Refuse before writing anything if an existing path is in the way: a directory where a
        file goes or the reverse always, any existing file unless `overwrite`."""
        problems = [p for entry, dest in plan if (p := self._in_the_way(entry, dest))]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            advice = "choose an empty folder" + ("" if self.overwrite else " or pass --overwrite")
            raise UnsafeTarget(f"{problems[0]}{more}: nothing was extracted; {advice}")

    def _in_the_way(self, entry: Entry, dest: Path) -> str | None:
        try:
            existing = os.lstat(dest).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        wants_dir, is_dir = st.S_ISDIR(entry.stat().mode), st.S_ISDIR(existing)
        if wants_dir and not is_dir:
            return f"{dest} exists and is not a directory"
        if is_dir and not wants_dir:
            return f"{dest} exists and is a directory"
        return f"{dest} exists" if not (is_dir or self.overwrite) else None

    def _extract_one(self, entry: Entry, dest: Path) -> None:
        self._check_parent(dest)
        s = entry.stat()
        if st.S_ISDIR(s.mode):
            self._make_dir(dest)
            self._dir_times.append((dest, entry))
            return
        if s.nlink > 1 and s.inode in self._links:
            self._replace(dest)
            os.link(self._links[s.inode], dest, follow_symlinks=False)
            self.result.hardlinks += 1
            return
        if st.S_ISREG(s.mode):
            self._write_file(entry, dest)
            self.result.files += 1
        elif st.S_ISLNK(s.mode):
            self._replace(dest)
            os.symlink(self.fs.readlink(entry), dest)
            self.result.symlinks += 1
        elif not self._make_special(entry, dest):
            return
        if s.nlink > 1:
            self._links[s.inode] = dest
        self._set_metadata(dest, entry)

    def _check_parent(self, dest: Path) -> None:
        parent = dest.parent
        if not (parent == self.target or self.target in parent.parents):
            raise UnsafeTarget(f"refusing to write outside {self.target}: {dest}")
        info = os.lstat(parent)
        if not st.S_ISDIR(info.st_mode):
            raise UnsafeTarget(f"refusing to write through {parent}: it is not a directory")

    def _make_dir(self, dest: Path) -> None:
        try:
            os.mkdir(dest, 0o700)
            self.result.dirs += 1
        except FileExistsError:
            if not st.S_ISDIR(os.lstat(dest).st_mode):
                raise UnsafeTarget(f"{dest} exists and is not a directory") from None

    def _replace(self, dest: Path) -> None:
        if not os.path.lexists(dest):
            return
        if not self.overwrite:
            raise UnsafeTarget(f"{dest} exists: choose an empty folder or pass --overwrite")
        if st.S_ISDIR(os.lstat(dest).st_mode):
            raise UnsafeTarget(f"{dest} exists and is a directory")
        os.unlink(dest)

    def _write_file(self, entry: Entry, dest: Path) -> None:
        self._replace(dest)
        size = entry.stat().size
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        direct = DirectWriter.open(str(dest)) if size >= BLOCK else None
        try:
            with self.fs.open(entry) as src:
                offset = 0
                while offset < size:
                    data = src.read(min(BLOCK, size - offset))
                    if not data:
                        break
                    _write_data(fd, data, offset, direct)
                    offset += len(data)
                    self.on_bytes(len(data))
            os.ftruncate(fd, size)
        finally:
            if direct is not None:
                direct.close()
            os.close(fd)
        self.result.bytes += size

    def _make_special(self, entry: Entry, dest: Path) -> bool:
        if not st.S_ISFIFO(entry.stat().mode):
            self.result.skipped.append(f"{_show(entry.path)}: {entry.stat().kind} nodes are not restored")
            return False
        self._replace(dest)
        os.mkfifo(dest, 0o600)
        self.result.specials += 1
        return True

    def _set_metadata(self, dest: Path, entry: Entry) -> None:
        s = entry.stat()
        if self.keep_owner:
            os.chown(dest, s.uid, s.gid, follow_symlinks=False)
        if not st.S_ISLNK(s.mode):
            os.chmod(dest, st.S_IMODE(s.mode))
        os.utime(dest, ns=(s.atime_ns, s.mtime_ns), follow_symlinks=False)


def _write_data(fd: int, data: bytes, offset: int, direct: DirectWriter | None = None) -> None:
    """Write `data` at `offset`, leaving aligned all-zero pieces as holes; large aligned pieces of
    big files bypass the page cache (hvbackup.directio)."""
    if is_zero(data):
        return
    view = memoryview(data)
    start = None
    for at in range(0, len(data), HOLE_GRAIN):
        piece = view[at : at + HOLE_GRAIN]
        if is_zero(piece):
            if start is not None:
                _write_run(fd, direct, view[start:at], offset + start)
                start = None
        elif start is None:
            start = at
    if start is not None:
        _write_run(fd, direct, view[start:], offset + start)


def _write_run(fd: int, direct: DirectWriter | None, data: memoryview, offset: int) -> None:
    if direct is not None and direct.fits(offset, len(data)):
        direct.pwrite(offset, data)
    else:
        while data:
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written


def _checked(name: bytes) -> bytes:
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise UnsafeTarget(f"refusing an unsafe name in the snapshot: {name!r}")
    return name


def extract(
    fs: FileSystem,
    path: bytes | str,
    target: Path,
    *,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> ExtractResult:
    """Extract `path` (a file or a whole tree) from `fs` into the folder `target`."""
    return Extractor(fs, target, overwrite=overwrite, on_bytes=on_bytes).run(fs.get(path))
