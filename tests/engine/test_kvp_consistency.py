"""Guest consistency through Data Exchange (KVP), with the code a real host runs: PowerShellHost over the
lab's transport, the real agent publishing into its VM's pool files (docs/HYPERV.md §13)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup import kvpreport
from hvbackup.assess.policy import Policy
from hvbackup.engine.vm_backup import RESULT_OK, backup_vms
from hvbackup.hyperv import kvp
from hvbackup.hyperv.enums import CheckpointType
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.lab.transport import LabTransport, read_call
from hvbackup.repo import Repository
from hvbackup.vocabulary import VmResult

from .conftest import PASSWORD

APPLICATION = Policy(consistency="application")


class LateRequestTransport(LabTransport):
    """A host whose AddKvpItems reaches the guest only after the checkpoint (docs/HYPERV.md §12 item 9)."""

    def run(self, script: str, timeout: float) -> str:
        operation, params = read_call(script)
        if operation == "set_guest_item":
            return json.dumps({"VMId": params["VmId"], "Name": params["Name"], "Method": "ModifyKvpItems"})
        return super().run(script, timeout)


class TornReadTransport(LabTransport):
    """The host enumerated the guest's pool while the agent rewrote it: one part of the report is missing."""

    def run(self, script: str, timeout: float) -> str:
        output = super().run(script, timeout)
        if read_call(script)[0] != "guest_items":
            return output
        document = json.loads(output)
        missing = kvpreport.part_key(kvpreport.FREEZE, 0)
        items = document["GuestExchangeItems"]
        document["GuestExchangeItems"] = [x for x in items if (kvp.parse_data_item(x) or ("",))[0] != missing]
        return json.dumps(document)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabHost]:
    host = LabHost.create(tmp_path / "lab")
    build_sample(host, [s for s in SAMPLE_VMS if s.name in ("web-01", "mixed-nic", "legacy-app")])
    yield host
    host.destroy()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path / "repo", PASSWORD) as repository:
        yield repository


def _host(lab: LabHost, transport: type[LabTransport] = LabTransport) -> PowerShellHost:
    return PowerShellHost(transport(lab), LocalFileSource, poll_interval=0.1, job_wait=0.5, report_wait=5.0)


def _backup(host: PowerShellHost, repo: Repository, name: str, policy: Policy):
    (result,) = backup_vms(host, repo, [host.get_vm(name)], policy).vms
    return result


def test_the_agent_reaches_application_through_kvp(lab: LabHost, repo: Repository) -> None:
    host = _host(lab)
    result = _backup(host, repo, "web-01", APPLICATION)
    assert (result.result, result.consistency) == (RESULT_OK, "application"), result.message
    report = repo.load_snapshot(result.snapshot).manifest["guest_report"]
    assert report["by"] == "vssd" and report["consistency"] == "application"
    assert report["host_request"] == host.requests[result.checkpoint.upper()][1], "tied to its checkpoint"


def test_the_stock_daemon_reaches_filesystem(lab: LabHost, repo: Repository) -> None:
    result = _backup(_host(lab), repo, "mixed-nic", Policy(consistency="filesystem"))
    assert (result.result, result.consistency) == (RESULT_OK, "filesystem"), result.message
    assert repo.load_snapshot(result.snapshot).manifest["guest_report"] is None


def test_a_guest_without_integration_services_never_passes_live_and_says_why(lab: LabHost, repo: Repository) -> None:
    result = _backup(_host(lab), repo, "legacy-app", APPLICATION)
    assert (result.result, result.consistency) == (VmResult.below_policy, "crash")
    assert "VSS integration service reports No Contact" in result.message, result.message
    lab.set_checkpoint_type("legacy-app", CheckpointType.ProductionOnly)
    refused = _backup(_host(lab), repo, "legacy-app", APPLICATION)
    assert refused.result != RESULT_OK and refused.snapshot is None
    assert "No Contact" in refused.message, refused.message


def test_a_report_carrying_an_earlier_token_is_never_application(lab: LabHost, repo: Repository) -> None:
    first = _backup(_host(lab), repo, "web-01", APPLICATION)
    assert first.consistency == "application"
    late = _host(lab, LateRequestTransport)
    result = _backup(late, repo, "web-01", Policy(consistency="filesystem"))
    assert (result.result, result.consistency) == (RESULT_OK, "filesystem"), result.message
    assert any("stale" in note for note in late.guest_notes), late.guest_notes


def test_a_torn_report_is_never_application(lab: LabHost, repo: Repository) -> None:
    torn = _host(lab, TornReadTransport)
    result = _backup(torn, repo, "web-01", Policy(consistency="filesystem"))
    assert (result.result, result.consistency) == (RESULT_OK, "filesystem"), result.message
    assert any("torn" in note for note in torn.guest_notes), torn.guest_notes
