"""The manifest contract: manifests written by the release before the typed records (fixtures made
then) stay readable, a read and a rewrite give back the same JSON, and a newer writer's keys survive."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hvbackup.engine.manifest import ImageManifest, VmManifest, read_manifest
from hvbackup.hyperv.enums import ConsistencyLevel

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_a_vm_manifest_of_the_first_release_reads_as_typed_records() -> None:
    manifest = read_manifest(load("manifest-vm-v1.json"))
    assert isinstance(manifest, VmManifest)
    assert (manifest.source, manifest.mode, manifest.consistency) == ("web-01", "live", "application")
    assert manifest.vm.name == "web-01" and manifest.vm.vm_config().name == "web-01"
    (disk,) = manifest.disks
    assert (disk.name, disk.controller, disk.format, disk.mode) == ("scsi0-0", "SCSI:0:0", "vhdx", "full")
    assert disk.size == 268435456 and disk.stats["bytes_new"] == 33554432
    assert manifest.reference_point.point.consistency_level == ConsistencyLevel.ApplicationConsistent
    assert manifest.guest_report.consistency == "application" and manifest.guest_report.hooks
    assert manifest.checkpoint.name.startswith("hvbackup-")
    assert set(manifest.extra) == {"id", "time", "hostname", "format_version", "indexes"}  # the repository's


def test_an_image_manifest_of_the_first_release_reads_as_typed_records() -> None:
    manifest = read_manifest(load("manifest-image-v1.json"))
    assert isinstance(manifest, ImageManifest)
    assert (manifest.source, manifest.parent, manifest.consistency) == ("disk.raw", None, "crash")
    (disk,) = manifest.disks
    assert (disk.name, disk.format, disk.block_size, disk.controller) == ("disk0", "raw", None, None)


@pytest.mark.parametrize("name", ["manifest-vm-v1.json", "manifest-image-v1.json"])
def test_a_read_and_a_rewrite_give_back_the_same_json(name: str) -> None:
    data = load(name)
    assert json.loads(json.dumps(read_manifest(data).to_json())) == data


def test_keys_of_a_newer_writer_survive_a_read_and_a_rewrite() -> None:
    data = load("manifest-vm-v1.json")
    newer = copy.deepcopy(data)
    newer["retention_tag"] = "monthly"
    newer["vm"]["generation"] = 2
    newer["disks"][0]["encryption"] = {"scheme": "future"}
    newer["guest_report"]["new_field"] = [1, 2]
    newer["reference_point"]["new_field"] = "kept"
    newer["checkpoint"]["new_field"] = True
    newer["consistency"] = "a-future-level"
    manifest = read_manifest(newer)
    assert manifest.extra["retention_tag"] == "monthly" and manifest.consistency == "a-future-level"
    assert json.loads(json.dumps(manifest.to_json())) == newer


def test_a_manifest_without_a_kind_but_with_a_vm_is_a_vm_manifest() -> None:
    data = load("manifest-vm-v1.json")
    del data["kind"]
    assert isinstance(read_manifest(data), VmManifest)
