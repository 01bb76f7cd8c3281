"""The capabilities a host may offer (HyperVHost.disk_writer, list_switches, checkpoint_files,
guest_readiness, guest_report): each is
declared on the interface with its "not offered" answer, and each host answers in the documented way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def test_the_powershell_host_reads_the_guest_through_kvp(ps_host, replay) -> None:
    assert ps_host.disk_writer is None  # its disk opener (a test stub) is neither local files nor SMB
    assert ps_host.guest_report(UNKNOWN_CHECKPOINT) is None, "a checkpoint it announced nothing for"
    assert replay.calls == []
    replay.queue("guest_items", "guest_items_none.json")
    assert ps_host.guest_readiness("web01") is None
    assert replay.operations() == ["guest_items"]


def test_over_the_lab_the_guest_is_read_from_its_kvp_pool(lab: LabHost) -> None:
    from hvbackup.hyperv.filesource import LocalFileSource
    from hvbackup.hyperv.powershell import PowerShellHost
    from hvbackup.lab.transport import LabTransport

    assert isinstance(lab.directory, Path) and lab.directory.is_dir()
    assert lab.guest_readiness("web-01") is None, "the lab host itself no longer answers for the guest"
    host = PowerShellHost(LabTransport(lab), LocalFileSource)
    readiness = host.guest_readiness("web-01")
    assert isinstance(readiness, dict) and readiness
    assert host.guest_report(UNKNOWN_CHECKPOINT) is None, "no report for a checkpoint the guest never froze for"
