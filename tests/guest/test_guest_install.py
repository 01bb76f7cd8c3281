"""`hvbackup-guest install | uninstall --root`: our unit replaces the stock VSS daemon, and gives it back."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _stock_debian(root: Path) -> None:
    unit = root / "lib/systemd/system/hv-vss-daemon.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\nBindsTo=sys-devices-virtual-misc-vmbus\\x21hv_vss.device\n")


def test_install_masks_the_stock_daemon_and_uninstall_restores_it(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    _stock_debian(tmp_path)
    res = guest_cli("install", "--json", "--root", tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["masked"] == ["hv-vss-daemon.service"]
    etc = tmp_path / "etc/systemd/system"
    assert os.readlink(etc / "hv-vss-daemon.service") == "/dev/null"
    unit = (etc / "hvbackup-guest.service").read_text()
    assert "Conflicts=hv-vss-daemon.service hypervvssd.service" in unit
    assert " vssd\n" in unit and "Restart=always" in unit
    assert (etc / "sys-devices-virtual-misc-vmbus\\x21hv_vss.device.wants/hvbackup-guest.service").is_symlink()
    res = guest_cli("uninstall", "--json", "--root", tmp_path)
    assert json.loads(res.stdout)["unmasked"] == ["hv-vss-daemon.service"]
    assert not os.path.lexists(etc / "hv-vss-daemon.service")
    assert not (etc / "hvbackup-guest.service").exists()
    assert (tmp_path / "lib/systemd/system/hv-vss-daemon.service").exists()


def test_uninstall_leaves_a_mask_it_did_not_make(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    _stock_debian(tmp_path)
    etc = tmp_path / "etc/systemd/system"
    etc.mkdir(parents=True)
    (etc / "hv-vss-daemon.service").symlink_to("/dev/null")  # the admin's own mask
    guest_cli("install", "--root", tmp_path)
    guest_cli("uninstall", "--root", tmp_path)
    assert os.readlink(etc / "hv-vss-daemon.service") == "/dev/null"


def test_local_stock_unit_file_is_refused(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    etc = tmp_path / "etc/systemd/system"
    etc.mkdir(parents=True)
    (etc / "hypervvssd.service").write_text("[Unit]\n")
    res = guest_cli("install", "--root", tmp_path)
    assert res.returncode == 1 and "local unit file" in res.stderr
    assert not (etc / "hvbackup-guest.service").exists()
