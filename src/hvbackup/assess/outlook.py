"""What a live checkpoint of a VM would give: can the guest freeze, and how consistent is the freeze?

Shared by `predict` (the verdict) and the rules, so that a finding and the verdict never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from hvbackup.assess.guest_report import GuestReport
from hvbackup.assess.remedies import LOAD_HV_UTILS, enable_service, ps, update_version
from hvbackup.hyperv.enums import IntegrationServiceStatus, VMState
from hvbackup.hyperv.model import VM
from hvbackup.vocabulary import Consistency

PRODUCTION_MIN_VERSION = (6, 2)  # production checkpoints and RCT (docs/ASSESS.md §1)
RUNNING_STATES = (VMState.Running, VMState.RunningCritical)
PAUSED_STATES = (VMState.Paused, VMState.PausedCritical)
OFF_STATES = (VMState.Off, VMState.OffCritical)
SAVED_STATES = (VMState.Saved, VMState.SavedCritical, VMState.FastSaved, VMState.FastSavedCritical, VMState.Hibernated)
DEFAULT_VSS_NAME = "VSS"


@dataclass(frozen=True)
class Obstacle:
    """Why the guest cannot freeze, and the command that removes the cause."""

    reason: str
    fix: str


@dataclass(frozen=True)
class LiveOutlook:
    obstacles: tuple[Obstacle, ...]
    consistency: Consistency  # what the freeze gives when there is no obstacle: application or filesystem
    note: str = ""  # what was assumed
    upgrade: str | None = None  # how to reach application consistency from filesystem

    @property
    def can_freeze(self) -> bool:
        return not self.obstacles


def parse_version(text: str) -> tuple[int, int] | None:
    parts = text.strip().split(".")
    try:
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except (ValueError, IndexError):
        return None


def version_too_old(vm: VM) -> bool:
    version = parse_version(vm.version)
    return version is not None and version < PRODUCTION_MIN_VERSION


def vss_service_name(vm: VM) -> str:
    service = vm.vss_service
    return service.name if service is not None else DEFAULT_VSS_NAME


def host_obstacles(vm: VM) -> list[Obstacle]:
    """What on the host side keeps the guest from freezing."""
    obstacles = []
    service = vm.vss_service
    enable = enable_service(vm.name, vss_service_name(vm))
    if service is None:
        obstacles.append(Obstacle("the VSS (backup) integration service is not offered to the VM", enable))
    elif not service.enabled or service.status == IntegrationServiceStatus.Disabled:
        obstacles.append(Obstacle("the VSS (backup) integration service is disabled", enable))
    elif service.guest_unreachable:
        obstacles.append(
            Obstacle(
                f"the VSS integration service reports {service.status_text or service.status.name}: the guest does not answer",
                f"in the guest: {LOAD_HV_UTILS} && hvbackup-guest install",
            )
        )
    if vm.state in PAUSED_STATES:
        obstacles.append(Obstacle("the VM is paused: a paused guest cannot freeze", f"Resume-VM -Name {ps(vm.name)}"))
    if version_too_old(vm):
        obstacles.append(
            Obstacle(
                f"configuration version {vm.version} is below 6.2: no production checkpoints",
                update_version(vm.name),
            )
        )
    return obstacles


def live_outlook(vm: VM, guest: GuestReport | None) -> LiveOutlook:
    obstacles = host_obstacles(vm)
    if guest is not None and guest.lacks_vss_daemon:
        obstacles.append(Obstacle("the guest runs no VSS daemon", "in the guest: hvbackup-guest install"))
    if guest is None:
        return LiveOutlook(
            tuple(obstacles),
            Consistency.filesystem,
            note="unknown guest: assumed stock daemon",
            upgrade="in the guest: hvbackup-guest install  # the agent runs hooks and database quiescers",
        )
    if guest.agent_runs:
        steps = guest.quiesce_steps
        if steps is None or steps > 0:
            return LiveOutlook(tuple(obstacles), Consistency.application)
        return LiveOutlook(
            tuple(obstacles),
            Consistency.filesystem,
            note="the agent runs no hook or quiescer",
            upgrade="in the guest: enable a quiescer in /etc/hvbackup/guest.toml or add a hook to /etc/hvbackup/hooks.d",
        )
    return LiveOutlook(
        tuple(obstacles),
        Consistency.filesystem,
        note=f"stock daemon {guest.stock_daemon}" if guest.stock_daemon else "",
        upgrade="in the guest: hvbackup-guest install  # replaces the stock daemon, runs hooks and quiescers",
    )
