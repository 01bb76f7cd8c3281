"""The capabilities a host may offer (HyperVHost.disk_writer, list_switches, checkpoint_files,
guest_readiness, guest_report): each is
declared on the interface with its "not offered" answer, and each host answers in the documented way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hvbackup.hyperv.host import HyperVHost
from hvbackup.lab import LabHost
from hvbackup.lab.sample import SAMPLE_VMS, build_sample

CAPABILITIES = ("disk_writer", "list_switches", "checkpoint_files", "guest_readiness", "guest_report")
UNKNOWN_CHECKPOINT = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    host = LabHost.create(tmp_path_factory.mktemp("caplab") / "lab")
    build_sample(host, [s for s in SAMPLE_VMS if s.name == "web-01"])
    yield host
    host.destroy()


@pytest.mark.parametrize("name", CAPABILITIES)
def test_the_interface_declares_each_capability_and_what_none_means(name: str) -> None:
    assert hasattr(HyperVHost, name)
    documented = HyperVHost.__doc__ if name == "disk_writer" else getattr(HyperVHost, name).__doc__
    assert f"`{name}`" in HyperVHost.__doc__ and "None" in documented


def test_the_powershell_host_offers_no_guest_report_and_asks_the_host_nothing(ps_host, replay) -> None:
    assert ps_host.disk_writer is None  # its disk opener (a test stub) is neither local files nor SMB
    assert ps_host.guest_readiness("web01") is None
    assert ps_host.guest_report(UNKNOWN_CHECKPOINT) is None
    assert replay.calls == []


def test_the_lab_host_offers_them(lab: LabHost) -> None:
    assert lab.disk_writer is not None and lab.disk_writer.local_folder(str(lab.directory)) == lab.directory
    readiness = lab.guest_readiness("web-01")
    assert isinstance(readiness, dict) and readiness
    assert lab.guest_report(UNKNOWN_CHECKPOINT) is None, "no report for a checkpoint the guest never froze for"
