"""The fixtures and the scripts describe the same documents.

For every object in every fixture, the script (or prelude function) that prints it must build
a hashtable with exactly those keys. So a script change that renames or drops a key fails here,
and a fixture cannot drift from what the scripts print.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from .hyperv_fixtures import fixture

SCRIPTS = Path(__file__).parents[2] / "src" / "hvbackup" / "hyperv" / "scripts"
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _scope(script: str, function: str | None):
    source = (SCRIPTS / f"{script}.ps1").read_bytes()
    root = PARSER.parse(source).root_node
    if function is None:
        return source, root
    for node in _walk(root):
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            if source[name.start_byte : name.end_byte].decode() == function:
                return source, node
    raise AssertionError(f"no function {function} in {script}.ps1")


def hashtable_key_sets(script: str, function: str | None = None) -> list[frozenset[str]]:
    """The key set of every hashtable literal in a script or one of its functions."""
    source, scope = _scope(script, function)
    sets = []
    for node in _walk(scope):
        if node.type != "hash_literal_expression":
            continue
        body = next((c for c in node.children if c.type == "hash_literal_body"), None)
        keys = set()
        for entry in body.children if body else []:
            if entry.type == "hash_entry":
                key = next(c for c in entry.children if c.type == "key_expression")
                keys.add(source[key.start_byte : key.end_byte].decode())
        sets.append(frozenset(keys))
    return sets


def assert_printed_by(obj: dict, script: str, function: str | None = None) -> None:
    keys = frozenset(obj)
    candidates = hashtable_key_sets(script, function)
    where = f"{script}.ps1" + (f" {function}" if function else "")
    assert keys in candidates, f"{sorted(keys)} is built by no hashtable in {where}: {[sorted(c) for c in candidates]}"


def assert_enum(value) -> None:
    if value is not None:
        assert_printed_by(value, "_prelude", "ConvertTo-HvEnum")


def check_vm(vm: dict) -> None:
    assert_printed_by(vm, "_prelude", "ConvertTo-HvVm")
    for key in ("State", "CheckpointType", "Heartbeat"):
        assert_enum(vm[key])
    if vm["Firmware"] is not None:
        assert_printed_by(vm["Firmware"], "_prelude", "ConvertTo-HvVm")
        assert_enum(vm["Firmware"]["SecureBoot"])
    for item in _items(vm["OperationalStatus"]):
        assert_enum(item)
    for service in _items(vm["IntegrationServices"]):
        assert_printed_by(service, "_prelude", "ConvertTo-HvIntegrationService")
        assert_enum(service["PrimaryOperationalStatus"])
    for adapter in _items(vm["NetworkAdapters"]):
        assert_printed_by(adapter, "_prelude", "ConvertTo-HvNetworkAdapter")
    for drive in _items(vm["HardDrives"]):
        check_drive(drive)
    for checkpoint in _items(vm["Checkpoints"]):
        assert_printed_by(checkpoint, "_prelude", "ConvertTo-HvCheckpoint")
        assert_enum(checkpoint["SnapshotType"])


def check_drive(drive: dict) -> None:
    assert_printed_by(drive, "_prelude", "ConvertTo-HvHardDrive")
    assert_enum(drive["ControllerType"])
    if drive["Vhd"] is not None:
        assert_printed_by(drive["Vhd"], "_prelude", "ConvertTo-HvVhd")
        assert_enum(drive["Vhd"]["VhdFormat"])
        assert_enum(drive["Vhd"]["VhdType"])


def _items(value) -> list:
    """The elements however PowerShell 5.1 printed the collection (see wire.as_list)."""
    if value is None:
        return []
    if isinstance(value, dict) and set(value) == {"value", "Count"}:
        return value["value"]
    return value if isinstance(value, list) else [value]


def test_host():
    assert_printed_by(fixture("get_host.json"), "get_host")


def test_inventory_and_every_nested_object():
    document = fixture("inventory.json")
    assert_printed_by(document, "inventory")
    for vm in document["VMs"]:
        check_vm(vm)


def test_new_vm():
    document = fixture("create_vm.json")
    assert_printed_by(document, "create_vm")
    check_vm(document["VM"])


@pytest.mark.parametrize(
    ("name", "script"),
    [("create_checkpoint_done.json", "create_checkpoint"), ("name_checkpoint.json", "name_checkpoint")],
)
def test_checkpoint_from_wmi(name, script):
    document = fixture(name)
    assert_printed_by(document, script)
    assert_printed_by(document["Checkpoint"], "_prelude", "ConvertTo-HvCheckpointFromWmi")


@pytest.mark.parametrize("name", ["create_checkpoint_pending.json", "poll_job_running.json"])
def test_pending_job(name):
    document = fixture(name)
    assert_printed_by(document, "_prelude", "ConvertTo-HvPending")
    assert_printed_by(document["Pending"], "_prelude", "ConvertTo-HvPending")


def test_checkpoint_disks():
    document = fixture("checkpoint_disks.json")
    assert_printed_by(document, "checkpoint_disks")
    for drive in document["HardDrives"]:
        check_drive(drive)


@pytest.mark.parametrize("name", ["changed_ranges_1.json", "changed_ranges_2.json"])
def test_changed_ranges(name):
    assert_printed_by(fixture(name), "changed_ranges")


def test_reference_points():
    converted = fixture("convert_to_reference_point.json")
    assert_printed_by(converted, "convert_to_reference_point")
    listed = fixture("list_reference_points.json")
    assert_printed_by(listed, "list_reference_points")
    for point in [converted["ReferencePoint"], *listed["ReferencePoints"]]:
        assert_printed_by(point, "_prelude", "ConvertTo-HvReferencePoint")
        assert_printed_by(point["ReferencePointType"], "_prelude", "ConvertTo-HvReferencePoint")
        assert_printed_by(point["ConsistencyLevel"], "_prelude", "ConvertTo-HvReferencePoint")


def test_orphans():
    document = fixture("list_orphans.json")
    assert_printed_by(document, "list_orphans")
    for orphan in document["Orphans"]:
        assert_printed_by(orphan, "list_orphans")


@pytest.mark.parametrize("name", ["guest_items.json", "guest_items_torn.json", "guest_items_none.json"])
def test_guest_items(name):
    assert_printed_by(fixture(name), "guest_items")


def test_set_guest_item():
    assert_printed_by(fixture("set_guest_item.json"), "set_guest_item")


def test_done():
    for script in ("destroy_checkpoint", "destroy_reference_point", "request_shutdown"):
        assert_printed_by(fixture("done.json"), script)


@pytest.mark.parametrize(
    "name",
    [
        "error_wmi_job.json",
        "error_method_return.json",
        "error_vm_not_found.json",
        "error_change_tracking.json",
        "error_unexpected.json",
    ],
)
def test_error_documents(name):
    document = fixture(name)
    assert_printed_by(document, "_prelude", "Write-HvFailure")
    source = (SCRIPTS / "_prelude.ps1").read_text()
    function = source[source.index("function Write-HvFailure") :].split("\n}\n")[0]
    (base,) = [keys for keys in hashtable_key_sets("_prelude", "Write-HvFailure") if "kind" in keys]
    added = set(re.findall(r"\$failure\.(\w+) =", function))
    copied = set(re.findall(r"'(\w+)'", re.search(r"foreach \(\$key in @\(([^)]*)\)\)", function).group(1)))
    assert set(document["error"]) <= base | added | copied
    kinds = set(re.findall(r"New-HvError '(\w+)'", "".join(p.read_text() for p in SCRIPTS.glob("*.ps1"))))
    assert document["error"]["kind"] in kinds | {"Unexpected"}
