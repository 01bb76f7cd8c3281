"""The repository: chunks, snapshots, keys and locks over a Backend (see docs/FORMAT.md)."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from hvbackup.errors import UsageError
from hvbackup.repo import layout
from hvbackup.repo.backend import Backend, LocalBackend
from hvbackup.repo.cache import ChunkCache, default_cache_root
from hvbackup.repo.config import DEFAULT_CHUNK_SIZE, FORMAT_VERSION, RepoConfig, check_chunk_size
from hvbackup.repo.crypto import CIPHERS, KeyMaterial, Sealer, SealError
from hvbackup.repo.errors import (
    ChunkDamaged,
    ChunkMissing,
    DamagedObject,
    IndexDamaged,
    IndexMissing,
    NoKeySlot,
    ObjectNotFound,
    RepositoryExists,
    RepositoryNotFound,
    RepositoryReadOnly,
    SnapshotNotFound,
    WrongPassword,
)
from hvbackup.repo.index import ZERO_CHUNK_ID, DiskIndex
from hvbackup.repo.keys import SCRYPT_N, KeySlot, unwrap, wrap
from hvbackup.repo.known import KnownChunks
from hvbackup.repo.locks import EXCLUSIVE, SHARED, LockInfo, Locks
from hvbackup.repo.snapshots import Snapshot, SnapshotInfo
from hvbackup.zeros import fill_zero

log = logging.getLogger("hvbackup.repo")

KEY_CHECK_CONTEXT = "key-check"


class Repository:
    """An open repository. Use Repository.init or Repository.open; close() or use `with`."""

    def __init__(
        self,
        path: Path,
        backend: Backend,
        config: RepoConfig,
        keys: KeyMaterial,
        slot_id: str | None,
        cache_root: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.backend = backend
        self.config = config
        self.keys = keys
        self.slot_id = slot_id
        self.sealer = Sealer(keys, config.cipher)
        self.locks = Locks(backend, self.sealer)
        cache = ChunkCache((cache_root or default_cache_root()) / config.id / "chunks.sqlite")
        self.known = KnownChunks(backend, cache)

    # -- creating and opening --------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: Path,
        password: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cipher: str = "aes-256-gcm",
        kdf_n: int = SCRYPT_N,
        cache_root: Path | None = None,
    ) -> Repository:
        path = Path(path)
        check_chunk_size(chunk_size)
        if cipher not in CIPHERS:
            raise UsageError(f"unknown cipher {cipher!r}; choose one of {', '.join(CIPHERS)}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RepositoryExists(f"{path} exists and is not an empty directory; refusing to create a repository")
        path.mkdir(parents=True, exist_ok=True)
        backend = LocalBackend(path)
        backend.make_folders(layout.FOLDERS)
        keys = KeyMaterial.generate()
        repo_id = secrets.token_hex(16)
        check = Sealer(keys, cipher).seal(repo_id.encode(), f"{KEY_CHECK_CONTEXT}:{repo_id}", compress=False)
        config = RepoConfig(
            id=repo_id,
            chunk_size=chunk_size,
            cipher=cipher,
            created=_now().isoformat(timespec="seconds"),
            key_check=base64.b64encode(check).decode(),
        )
        slot = wrap(keys, password, repo_id, n=kdf_n, label="initial")
        backend.put(layout.key_slot(slot.slot_id), slot.to_bytes())
        backend.put(layout.GENERATION, b"0\n")
        backend.put(layout.CONFIG, config.to_bytes())  # last: a repository exists once its config does
        return cls(path, backend, config, keys, slot.slot_id, cache_root)

    @classmethod
    def open(
        cls,
        path: Path,
        password: str | None = None,
        *,
        key: KeyMaterial | None = None,
        cache_root: Path | None = None,
    ) -> Repository:
        """Open with a passphrase (tried against every key slot) or with exported key material."""
        path = Path(path)
        backend = LocalBackend(path)
        config = _read_config(path, backend)
        if key is not None:
            if not _key_opens(config, key):
                raise WrongPassword(f"the key does not belong to the repository at {path}")
            return cls(path, backend, config, key, None, cache_root)
        if password is None:
            raise UsageError("a passphrase or a key is needed to open the repository")
        slots = _read_slots(backend)
        if not slots:
            raise _no_key_slot(path, backend)
        for slot in slots:
            keys = unwrap(slot, password, config.id)
            if keys is not None:
                return cls(path, backend, config, keys, slot.slot_id, cache_root)
        raise WrongPassword(f"wrong passphrase for the repository at {path} (tried {len(slots)} key slots)")

    @staticmethod
    def read_config(path: Path) -> RepoConfig:
        """The config of the repository at `path`: RepositoryNotFound or UnsupportedFormat if unusable."""
        return _read_config(Path(path), LocalBackend(Path(path)))

    def close(self) -> None:
        self.known.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def chunk_size(self) -> int:
        return self.config.chunk_size

    # -- chunks ----------------------------------------------------------------------------

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        return self.sealer.chunk_id(data)

    def has_chunk(self, cid: bytes) -> bool:
        """Whether the repository holds the chunk (intact, as far as `check` knows). Reliable inside a lease."""
        return cid == ZERO_CHUNK_ID or cid in self.known

    def put_chunk(self, cid: bytes, data: bytes | memoryview, *, trusted_id: bool = False) -> int:
        """Store a chunk unless the repository holds it; the number of bytes written (0 if it was there).

        A chunk that `check` found damaged is written again, which repairs it. The id is checked
        against the data unless the caller has just computed it from this very buffer (`trusted_id`).
        """
        if self.has_chunk(cid):
            return 0
        if not trusted_id and self.chunk_id(data) != cid:
            raise ValueError(f"chunk {cid.hex()} does not match its data")
        blob = self.sealer.seal(data, _chunk_context(cid))
        self.backend.put(layout.chunk(cid), memoryview(blob))
        self.known.add(cid)
        return len(blob)

    def get_chunk(self, cid: bytes) -> bytes:
        """The chunk's plaintext, verified; ChunkMissing or ChunkDamaged naming the chunk."""
        if cid == ZERO_CHUNK_ID:
            return bytes(self.chunk_size)
        try:
            blob = self.backend.get_view(layout.chunk(cid))
        except ObjectNotFound:
            raise ChunkMissing(cid) from None
        try:
            data = self.sealer.open(blob, _chunk_context(cid))
        except SealError as exc:
            raise ChunkDamaged(cid, str(exc)) from None
        if self.chunk_id(data) != cid:
            raise ChunkDamaged(cid, "its content does not hash to its id")
        return data

    def read_chunk_into(self, cid: bytes, out: memoryview) -> None:
        """Like get_chunk, into `out` (exactly the chunk's length) without the copies get_chunk makes."""
        if cid == ZERO_CHUNK_ID:
            fill_zero(out)
            return
        try:
            blob = self.backend.get_view(layout.chunk(cid))
        except ObjectNotFound:
            raise ChunkMissing(cid) from None
        try:
            self.sealer.open_into(blob, _chunk_context(cid), out)
        except SealError as exc:
            raise ChunkDamaged(cid, str(exc)) from None
        if self.chunk_id(out) != cid:
            raise ChunkDamaged(cid, "its content does not hash to its id")

    def list_chunk_ids(self) -> Iterator[bytes]:
        """Every chunk id in the repository, by listing the backend (not the cache)."""
        return self.known.listed()

    def mark_damaged(self, cids: set[bytes]) -> None:
        """Remember chunks `check` found missing or damaged, so that the next backup stores them again."""
        self.known.mark_damaged(cids)

    def generation(self) -> int:
        return self.known.generation()

    def bump_generation(self) -> int:
        return self.known.bump_generation()

    def rebuild_cache(self) -> int:
        """Rebuild the chunk cache by listing the repository; the number of chunks found."""
        return len(self.known.sync(force=True))

    # -- locks -----------------------------------------------------------------------------

    @contextmanager
    def backup_lease(self, description: str, wait: float = 0.0) -> Iterator[LockInfo]:
        """A shared lease for writers; prune cannot run while it is held. Waits up to `wait` s for prune."""
        with self.locks.hold(SHARED, description, wait) as lease:
            self.known.sync()  # prune may have deleted chunks since this process loaded its set
            yield lease

    @contextmanager
    def read_lease(self, description: str) -> Iterator[LockInfo | None]:
        """A shared lease for readers (restores, file browsing, mounts), so that prune cannot delete
        chunks they are about to read. A repository this process cannot write to gets none: no one
        on this side can prune it either."""
        with ExitStack() as stack:
            try:
                info = stack.enter_context(self.locks.hold(SHARED, description))
            except RepositoryReadOnly:
                info = None
            yield info

    @contextmanager
    def exclusive_lock(self, description: str, wait: float = 0.0) -> Iterator[LockInfo]:
        with self.locks.hold(EXCLUSIVE, description, wait) as lock:
            yield lock

    # -- snapshots -------------------------------------------------------------------------

    def commit_snapshot(
        self, manifest: dict, indexes: dict[str, DiskIndex], *, time: datetime | None = None
    ) -> SnapshotInfo:
        """Write the disk indexes, then the manifest (the commit point). `time` is for imports and tests."""
        manifest = _validated_manifest(manifest, indexes)
        self._require_chunks(indexes)
        snapshot_id = secrets.token_hex(16)
        index_entries = {}
        for number, disk in enumerate(manifest["disks"]):
            raw = indexes[disk["name"]].to_bytes()
            name = layout.index(snapshot_id, number)
            self.backend.put(name, memoryview(self.sealer.seal(raw, _index_context(name))))
            index_entries[disk["name"]] = {"object": name, "hash": self.chunk_id(raw).hex()}
        when = (time or _now()).astimezone(UTC)
        manifest.update(
            id=snapshot_id,
            time=when.isoformat(),
            hostname=socket.gethostname(),
            format_version=FORMAT_VERSION,
            indexes=index_entries,
        )
        name = layout.snapshot(snapshot_id)
        self.backend.put(
            name, memoryview(self.sealer.seal(json.dumps(manifest).encode(), _snapshot_context(snapshot_id)))
        )
        self.known.save()
        return _info(manifest, protected=False)

    def _require_chunks(self, indexes: dict[str, DiskIndex]) -> None:
        for index in indexes.values():
            for cid in index.stored_ids():
                if not self.has_chunk(cid) and not self.backend.exists(layout.chunk(cid)):
                    raise ChunkMissing(cid)

    def list_snapshots(self, *, strict: bool = False) -> list[SnapshotInfo]:
        """All snapshots, oldest first. A damaged manifest is skipped with a warning, or raises when strict."""
        protected = self._protected_ids()
        infos = []
        for snapshot_id in self._snapshot_ids():
            try:
                infos.append(self._read_info(snapshot_id, protected))
            except (DamagedObject, ObjectNotFound) as exc:
                if strict:
                    raise
                log.warning("skipping snapshot %s: %s", snapshot_id, exc)
        return sorted(infos, key=lambda i: (i.time, i.id))

    def load_snapshot(self, ref: str, source: str | None = None) -> Snapshot:
        """A snapshot by reference (see resolve_snapshot_id)."""
        return Snapshot(self._read_info(self.resolve_snapshot_id(ref, source)), self._load_index)

    def latest_snapshot(self, source: str) -> Snapshot | None:
        infos = [i for i in self.list_snapshots() if i.source == source]
        return Snapshot(infos[-1], self._load_index) if infos else None

    def resolve_snapshot_id(self, ref: str, source: str | None = None) -> str:
        """The full id a reference names: a full id, a unique id prefix, `SOURCE:latest`, or
        `latest`. `latest` alone needs `source` unless the repository holds only one source, so a
        restore never picks another VM's snapshot; an id given with a source must belong to it."""
        ref_source, sep, tail = ref.rpartition(":")
        if sep and tail == "latest":
            if source is not None and source != ref_source:
                raise SnapshotNotFound(f"{ref!r} names source {ref_source!r}, but --source is {source!r}")
            return self._latest_of(ref_source)
        if ref == "latest":
            return self._latest_of(source)
        snapshot_id = self._id_by_prefix(ref)
        if source is not None:
            actual = self._read_info(snapshot_id).source
            if actual != source:
                raise SnapshotNotFound(f"snapshot {snapshot_id[:12]} is of {actual!r}, not of {source!r}")
        return snapshot_id

    def _latest_of(self, source: str | None) -> str:
        infos = self.list_snapshots()
        if not infos:
            raise SnapshotNotFound("the repository has no snapshots")
        if source is not None:
            infos = [i for i in infos if i.source == source]
            if not infos:
                raise SnapshotNotFound(f"no snapshot of {source!r} in the repository")
            return infos[-1].id
        sources = sorted({i.source for i in infos})
        if len(sources) > 1:
            raise SnapshotNotFound(
                f"'latest' is ambiguous: the repository holds {len(sources)} sources ({', '.join(sources)}); "
                "name one with --source NAME or NAME:latest"
            )
        return infos[-1].id

    def _id_by_prefix(self, ref: str) -> str:
        ids = self._snapshot_ids()
        if ref in ids:
            return ref
        matches = [i for i in ids if i.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise SnapshotNotFound(f"snapshot prefix {ref!r} is ambiguous ({len(matches)} snapshots match)")
        raise SnapshotNotFound(f"no snapshot {ref!r} in the repository")

    def snapshot_object_ids(self) -> list[str]:
        return self._snapshot_ids()

    def snapshot_info(self, snapshot_id: str) -> SnapshotInfo:
        """The summary of the snapshot with this full id; DamagedObject if its manifest is unreadable."""
        return self._read_info(snapshot_id)

    def is_protected(self, snapshot_id: str) -> bool:
        return self.backend.exists(layout.protected(snapshot_id))

    def _snapshot_ids(self) -> list[str]:
        return [layout.leaf(n) for n in self.backend.list(layout.SNAPSHOTS)]

    def _protected_ids(self) -> set[str]:
        return {layout.leaf(n) for n in self.backend.list(layout.PROTECTED)}

    def _read_info(self, snapshot_id: str, protected: set[str] | None = None) -> SnapshotInfo:
        name = layout.snapshot(snapshot_id)
        try:
            blob = self.backend.get(name)
        except ObjectNotFound:
            raise SnapshotNotFound(f"no snapshot {snapshot_id!r} in the repository") from None
        try:
            manifest = json.loads(self.sealer.open(blob, _snapshot_context(snapshot_id)))
        except (SealError, ValueError) as exc:
            raise DamagedObject(f"snapshot {snapshot_id} manifest is damaged: {exc or type(exc).__name__}") from None
        if protected is None:
            protected = {snapshot_id} if self.is_protected(snapshot_id) else set()
        try:
            return _info(manifest, snapshot_id in protected)
        except DamagedObject as exc:
            raise DamagedObject(f"snapshot {snapshot_id} {exc}") from None

    def _load_index(self, info: SnapshotInfo, disk_name: str) -> DiskIndex:
        entry = info.manifest.get("indexes", {}).get(disk_name)
        if entry is None:
            raise KeyError(f"snapshot {info.short_id} has no disk named {disk_name!r}")
        name = entry["object"]
        where = f"index of disk {disk_name!r} in snapshot {info.short_id}"
        try:
            raw = self.sealer.open(self.backend.get(name), _index_context(name))
        except ObjectNotFound:
            raise IndexMissing(f"the {where} is missing ({name})") from None
        except SealError as exc:
            raise IndexDamaged(f"the {where} is damaged: {exc}") from None
        if self.chunk_id(raw).hex() != entry["hash"]:
            raise IndexDamaged(f"the {where} does not match its manifest")
        try:
            return DiskIndex.from_bytes(raw)
        except ValueError as exc:
            raise IndexDamaged(f"the {where} is malformed: {exc}") from None

    def set_protected(self, ref: str, protected: bool) -> SnapshotInfo:
        snapshot_id = self.resolve_snapshot_id(ref)
        name = layout.protected(snapshot_id)
        if protected:
            mark = json.dumps({"protected": _now().isoformat(timespec="seconds")}).encode()
            self.backend.put(name, memoryview(self.sealer.seal(mark, f"protected:{snapshot_id}", compress=False)))
        else:
            self.backend.delete(name)
        return self._read_info(snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove a snapshot: the manifest first (it is the commit point), then its indexes."""
        if self.is_protected(snapshot_id):
            raise UsageError(f"snapshot {snapshot_id[:8]} is protected; unprotect it first")
        self.backend.delete(layout.snapshot(snapshot_id))
        for name in list(self.backend.list(f"{layout.INDEXES}/{snapshot_id}")):
            self.backend.delete(name)

    # -- key slots -------------------------------------------------------------------------

    def key_slots(self) -> list[KeySlot]:
        return _read_slots(self.backend)

    def add_key_slot(self, password: str, label: str = "", *, kdf_n: int = SCRYPT_N) -> KeySlot:
        slot = wrap(self.keys, password, self.id, label=label, n=kdf_n)
        self.backend.put(layout.key_slot(slot.slot_id), slot.to_bytes())
        return slot

    def remove_key_slot(self, ref: str) -> str:
        """Remove the key slot with this id or unique id prefix; its full id."""
        slots = {s.slot_id for s in self.key_slots()}
        slot_id = _slot_by_prefix(ref, slots)
        if slots == {slot_id}:
            raise UsageError("refusing to remove the last key slot: the repository could no longer be opened")
        if slot_id == self.slot_id:
            raise UsageError("refusing to remove the key slot in use; open the repository with another passphrase")
        self.backend.delete(layout.key_slot(slot_id))
        return slot_id

    def export_key(self) -> str:
        return self.keys.export(self.id)


# -- helpers -------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _chunk_context(cid: bytes) -> str:
    return f"chunk:{cid.hex()}"


def _index_context(name: str) -> str:
    return f"index:{name}"


def _snapshot_context(snapshot_id: str) -> str:
    return f"snapshot:{snapshot_id}"


def _read_config(path: Path, backend: Backend) -> RepoConfig:
    if not path.is_dir():
        raise RepositoryNotFound(f"no repository at {path} (no such directory)")
    try:
        raw = backend.get(layout.CONFIG)
    except ObjectNotFound:
        raise RepositoryNotFound(f"no repository at {path} (no config file)") from None
    return RepoConfig.from_bytes(raw, str(path))


def _read_slots(backend: Backend) -> list[KeySlot]:
    slots = []
    for name in sorted(backend.list(layout.KEYS)):
        try:
            slots.append(KeySlot.from_bytes(layout.leaf(name), backend.get(name)))
        except (ValueError, ObjectNotFound) as exc:
            log.warning("ignoring unreadable key slot %s: %s", name, exc)
    return slots


def _slot_by_prefix(ref: str, slots: set[str]) -> str:
    if ref in slots:
        return ref
    matches = [s for s in slots if s.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"key slot prefix {ref!r} is ambiguous ({len(matches)} slots match)")
    raise UsageError(f"no key slot {ref!r} (see hvbackup key list)")


def _no_key_slot(path: Path, backend: Backend) -> NoKeySlot:
    unreadable = len(list(backend.list(layout.KEYS)))
    if unreadable:
        what = "its one key slot is unreadable" if unreadable == 1 else f"all {unreadable} key slots are unreadable"
    else:
        what = "its keys/ folder is empty or gone"
    return NoKeySlot(
        f"the repository at {path} has no key slots ({what}): it is damaged, the passphrase was not tried; "
        "open it with an exported key (--key-file FILE), then add a passphrase with `hvbackup key add`"
    )


def _key_opens(config: RepoConfig, keys: KeyMaterial) -> bool:
    try:
        blob = base64.b64decode(config.key_check)
        return Sealer(keys, config.cipher).open(blob, f"{KEY_CHECK_CONTEXT}:{config.id}") == config.id.encode()
    except (SealError, ValueError):
        return False


def _validated_manifest(manifest: dict, indexes: dict[str, DiskIndex]) -> dict:
    try:
        manifest = json.loads(json.dumps(manifest))  # a private copy, and proof that it is JSON
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the manifest is not JSON-serialisable: {exc}") from None
    if not isinstance(manifest.get("source"), str) or not manifest["source"]:
        raise ValueError("the manifest needs a non-empty string 'source'")
    disks = manifest.get("disks")
    if not isinstance(disks, list) or not all(isinstance(d, dict) and "name" in d for d in disks):
        raise ValueError("the manifest needs 'disks': a list of dicts, each with a 'name'")
    names = [str(d["name"]) for d in disks]
    if len(set(names)) != len(names):
        raise ValueError("disk names in a manifest must be unique")
    if set(names) != set(indexes):
        raise ValueError(f"indexes given for {sorted(indexes)} but the manifest lists disks {sorted(names)}")
    return manifest


def _info(manifest: dict, protected: bool) -> SnapshotInfo:
    try:
        time = datetime.fromisoformat(manifest["time"])
        return SnapshotInfo(str(manifest["id"]), time, str(manifest["source"]), protected, manifest)
    except (KeyError, ValueError) as exc:
        raise DamagedObject(f"manifest lacks a valid {exc}") from None
