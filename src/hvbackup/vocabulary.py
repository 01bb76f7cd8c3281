"""The domain's words, once: consistency (with its rank), the policy's choices, backup modes and
a VM's run result. Each value is the string the JSON output and the manifests carry.

A leaf module: it imports nothing of hvbackup, so assess, engine and cli can all use it (and the
CLI can load it without loading them). Member names are the values (`-` as `_`), so
`Consistency.filesystem` reads like the string it stands for.
"""

from __future__ import annotations

from enum import StrEnum


class Consistency(StrEnum):
    """How consistent a restore point is (achieved, or predicted)."""

    application = "application"
    filesystem = "filesystem"
    crash = "crash"
    saved_state = "saved-state"
    offline = "offline"
    none = "none"

    @property
    def rank(self) -> int:
        """How good it is. "offline" ranks with "application": the administrator accepted downtime
        to get a point in time nothing was writing to. "saved-state" ranks with "crash": a saved
        VM's disks alone are what a power cut at the moment of the save leaves, since the guest's
        unwritten data is in the memory state; it ranks with "application" only where the memory
        state (.vmrs) was captured with the disks and restores with them (`rank_with`)."""
        return CONSISTENCY_RANK[self]

    def rank_with(self, *, vmrs_captured: bool) -> int:
        """The rank given whether the saved memory state (.vmrs) was captured with the disks."""
        if self is Consistency.saved_state and vmrs_captured:
            return CONSISTENCY_RANK[Consistency.application]
        return self.rank

    def meets(self, required: Consistency | RequiredConsistency | str, *, vmrs_captured: bool = False) -> bool:
        return self.rank_with(vmrs_captured=vmrs_captured) >= Consistency(required).rank


CONSISTENCY_RANK: dict[Consistency, int] = {
    Consistency.none: 0,
    Consistency.crash: 1,
    Consistency.saved_state: 1,
    Consistency.filesystem: 2,
    Consistency.application: 3,
    Consistency.offline: 3,
}


class RequiredConsistency(StrEnum):
    """The policy's choice: the weakest consistency the administrator accepts."""

    application = "application"
    filesystem = "filesystem"
    crash = "crash"


class Downtime(StrEnum):
    """The policy's choice: the downtime a VM may get to reach the consistency asked for."""

    never = "never"
    save = "save"
    shutdown = "shutdown"


class BackupMode(StrEnum):
    """How a VM is backed up: `live` (a checkpoint of the running VM), `saved` (of the VM in saved
    state: saved for it, or already saved), `shutdown` (shut down for it), `offline` (it is off),
    `none` (it cannot be backed up now)."""

    live = "live"
    saved = "saved"
    shutdown = "shutdown"
    offline = "offline"
    none = "none"


class VmResult(StrEnum):
    """The result of one VM's backup run."""

    ok = "ok"
    below_policy = "below-policy"
    partial = "partial"
    failed = "failed"
    locked = "locked"
