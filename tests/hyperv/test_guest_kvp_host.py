"""PowerShellHost's guest channel: GuestExchangeItems in the documented XML shape, and a freeze report
counted only when it is whole and carries the token announced for its checkpoint."""

from __future__ import annotations

import json
import time

from hvbackup import kvpreport
from hvbackup.hyperv import kvp
from hvbackup.hyperv.enums import ConsistencyLevel
from hvbackup.hyperv.wire import vm_from_json

from .hyperv_fixtures import fixture

APP = ConsistencyLevel.ApplicationConsistent
VM_ID = "6A1F3C2E-8B4D-4E5F-9A0B-1C2D3E4F5A6B"
FIXTURE_TOKEN = "3b9e0c1d5a7f4e2b8c6d0a1f2e3d4c5b"
REPORT = {"backup_id": "b1", "by": "vssd", "consistency": "application", "hooks": [{"stdout": "." * 3000}]}


def _vm():
    return vm_from_json(fixture("inventory.json")["VMs"][0])


def _items_document(items: dict[str, str]) -> str:
    return json.dumps({"VMId": VM_ID, "GuestExchangeItems": [kvp.data_item_xml(k, v) for k, v in items.items()]})


def _take_checkpoint(replay, ps_host):
    replay.queue("set_guest_item", "set_guest_item.json")
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(_vm(), APP, "hvbackup-20261125T030000Z")
    (announced,) = [params for op, params in replay.calls if op == "set_guest_item"]
    return checkpoint, announced["Data"]


def test_exchange_items_parse_in_the_documented_shape() -> None:
    documents = fixture("guest_items.json")["GuestExchangeItems"]
    items = kvp.parse_exchange_items([*documents, "<INSTANCE", '<INSTANCE CLASSNAME="Other"/>', None])
    assert items["cloud-init"] == "provisioning done"
    readiness = kvp.read_report(items, kvpreport.READINESS).report
    assert readiness is not None and readiness["findings"][0]["remedy"].startswith("echo none > /sys")


def test_readiness_is_read_by_vm_name_from_guest_exchange_items(replay, ps_host) -> None:
    replay.queue("guest_items", "guest_items.json")
    readiness = ps_host.guest_readiness("web-01")
    assert readiness is not None and readiness["vss_daemon"]["running"] == {"hvbackup-guest": 412}
    assert replay.calls == [("guest_items", {"VmName": "web-01"})]


def test_a_torn_readiness_report_is_not_used(replay, ps_host) -> None:
    replay.queue("guest_items", "guest_items_torn.json")
    assert ps_host.guest_readiness(VM_ID) is not None  # the readiness parts are whole
    replay.queue("guest_items", "guest_items_none.json")
    assert ps_host.guest_readiness(VM_ID) is None
    assert "no Readiness report" in ps_host.guest_notes[-1]


def test_the_request_is_announced_before_the_checkpoint_and_its_report_counts(replay, ps_host) -> None:
    checkpoint, token = _take_checkpoint(replay, ps_host)
    assert replay.operations()[:2] == ["set_guest_item", "create_checkpoint"]
    assert replay.calls[0][1]["Name"] == kvpreport.REQUEST_KEY and len(token) == 32
    replay.answers["guest_items"].append(_items_document(kvpreport.split(kvpreport.FREEZE, REPORT, token)))
    assert ps_host.guest_report(checkpoint.id) == REPORT
    assert ps_host.guest_report(checkpoint.id.lower()) == REPORT, "read once, then remembered"
    assert replay.operations().count("guest_items") == 1


def test_a_report_of_an_earlier_checkpoint_is_stale_and_never_counted(replay, ps_host) -> None:
    ps_host.report_wait, ps_host.poll_interval = 0.2, 0.05
    checkpoint, token = _take_checkpoint(replay, ps_host)
    assert token != FIXTURE_TOKEN
    for _ in range(50):
        replay.queue("guest_items", "guest_items.json")
    started = time.monotonic()
    assert ps_host.guest_report(checkpoint.id) is None
    assert time.monotonic() - started < 5, "the wait for the agent's report is bounded"
    assert "stale" in ps_host.guest_notes[-1]


def test_a_torn_freeze_report_is_never_counted(replay, ps_host) -> None:
    ps_host.report_wait = 0.0
    checkpoint, token = _take_checkpoint(replay, ps_host)
    items = kvpreport.split(kvpreport.FREEZE, REPORT, token)
    del items[kvpreport.part_key(kvpreport.FREEZE, 1)]
    replay.answers["guest_items"].append(_items_document(items))
    assert ps_host.guest_report(checkpoint.id) is None
    assert "torn" in ps_host.guest_notes[-1]


def test_the_report_written_after_the_thaw_hooks_is_waited_for(replay, ps_host) -> None:
    ps_host.report_wait = 10.0
    checkpoint, token = _take_checkpoint(replay, ps_host)
    replay.answers["guest_items"].append(_items_document({}))
    replay.answers["guest_items"].append(_items_document(kvpreport.split(kvpreport.FREEZE, REPORT, token)))
    assert ps_host.guest_report(checkpoint.id) == REPORT


def test_no_waiting_when_the_guest_runs_the_stock_daemon(replay, ps_host) -> None:
    ps_host.report_wait = 30.0
    ps_host.poll_interval = 0.5
    checkpoint, _ = _take_checkpoint(replay, ps_host)
    stock = {"vss_daemon": {"running": {"hv_vss_daemon": 301}}}
    replay.answers["guest_items"].append(_items_document(kvpreport.split(kvpreport.READINESS, stock)))
    started = time.monotonic()
    assert ps_host.guest_report(checkpoint.id) is None
    assert time.monotonic() - started < 0.4


def test_a_host_that_refuses_the_item_still_checkpoints_but_counts_no_report(replay, ps_host) -> None:
    replay.queue("set_guest_item", "error_method_return.json")
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(_vm(), APP, "hvbackup-20261125T030000Z")
    assert ps_host.guest_report(checkpoint.id) is None
    assert "guest_items" not in replay.operations()
    assert "not announced" in ps_host.guest_notes[-1]


def test_a_crash_consistent_checkpoint_asks_the_guest_nothing(replay, ps_host) -> None:
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(_vm(), ConsistencyLevel.CrashConsistent, "hvbackup-x")
    assert ps_host.guest_report(checkpoint.id) is None
    assert replay.operations() == ["create_checkpoint", "name_checkpoint"]


def test_no_waiting_for_a_guest_that_never_published_readiness(replay, ps_host) -> None:
    """A guest with no hvbackup items before the backup has no agent (it publishes readiness when it
    starts): the freeze report is read once, so a stock-daemon guest does not cost `report_wait`."""
    ps_host.report_wait = 30.0
    ps_host.poll_interval = 0.5
    replay.answers["guest_items"].append(_items_document({}))
    assert ps_host.guest_readiness(_vm().name) is None
    checkpoint, _ = _take_checkpoint(replay, ps_host)
    replay.answers["guest_items"].append(_items_document({}))
    started = time.monotonic()
    assert ps_host.guest_report(checkpoint.id) is None
    assert time.monotonic() - started < 0.4
