"""Object names in a repository (see docs/FORMAT.md)."""

from __future__ import annotations

CONFIG = "config"
GENERATION = "generation"
KEYS = "keys"
CHUNKS = "chunks"
INDEXES = "indexes"
SNAPSHOTS = "snapshots"
PROTECTED = "protected"
LOCKS = "locks"
FOLDERS = (KEYS, CHUNKS, INDEXES, SNAPSHOTS, PROTECTED, LOCKS)


def chunk(cid: bytes) -> str:
    h = cid.hex()
    return f"{CHUNKS}/{h[:2]}/{h[2:4]}/{h}"


def chunk_id_of(name: str) -> bytes | None:
    """The id of a chunk object name, or None for anything that is not one."""
    leaf = name.rsplit("/", 1)[-1]
    if len(leaf) != 64:
        return None
    try:
        return bytes.fromhex(leaf)
    except ValueError:
        return None


def key_slot(slot_id: str) -> str:
    return f"{KEYS}/{slot_id}"


def snapshot(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}/{snapshot_id}"


def index(snapshot_id: str, disk_number: int) -> str:
    return f"{INDEXES}/{snapshot_id}/{disk_number}"


def protected(snapshot_id: str) -> str:
    return f"{PROTECTED}/{snapshot_id}"


def lock(lock_id: str) -> str:
    return f"{LOCKS}/{lock_id}"


def leaf(name: str) -> str:
    return name.rsplit("/", 1)[-1]


_KINDS = {
    CHUNKS: "a chunk",
    INDEXES: "a disk index",
    SNAPSHOTS: "a snapshot manifest",
    KEYS: "a key slot",
    PROTECTED: "a protection mark",
    LOCKS: "a lock",
    GENERATION: "the generation file",
    CONFIG: "the config",
}


def kind(name: str) -> str:
    """What an object is, in words ("a chunk"), from its name."""
    return _KINDS.get(name.split("/", 1)[0], name)
