"""Mount selection rules on mountinfo text, and guest.toml parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvbackup.guest.config import ConfigError, load_config, parse_config
from hvbackup.guest.mounts import Topology, parse_mountinfo, plan_freeze

MOUNTINFO = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
25 22 8:17 / /srv rw - xfs /dev/sdb1 rw
26 25 8:17 /x /srv/with\\040space rw - xfs /dev/sdb1 rw
27 22 8:2 / /boot/efi rw - vfat /dev/sda2 rw
28 22 8:33 / /data rw - btrfs /dev/sdc rw
29 22 7:1 / /img rw - ext4 /dev/loop1 rw
30 22 0:50 / /net rw - cifs //server/share rw
31 22 8:49 / /ro ro - ext4 /dev/sdd1 ro
32 22 8:50 / /rosb rw - ext4 /dev/sdd2 ro
"""


def test_parse_unescapes_paths_and_splits_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[2].mountpoint == "/srv/with space" and mounts[2].root == "/x"
    assert mounts[0].dev == "8:1" and mounts[0].fstype == "ext4" and mounts[0].source == "/dev/sda1"
    assert mounts[7].read_only and mounts[8].read_only and not mounts[0].read_only


def test_daemon_rules_root_last_and_reasons(tmp_path: Path) -> None:
    plan = plan_freeze(parse_mountinfo(MOUNTINFO), None, Topology(tmp_path), check_paths=False)
    assert [m.mountpoint for m in plan.covers] == ["/srv", "/data", "/"]
    reasons = {s.mount.mountpoint: s.reason for s in plan.skips}
    assert reasons["/srv/with space"].startswith("same filesystem as /srv")
    assert reasons["/boot/efi"].startswith("vfat")
    assert reasons["/img"].startswith("loop-backed")
    assert reasons["/net"].startswith("network filesystem")
    assert reasons["/ro"] == reasons["/rosb"] == "mounted read-only"


def test_config_defaults_overrides_and_errors(tmp_path: Path) -> None:
    default = parse_config("")
    assert default.max_seconds == 60 and default.on_hook_failure == "continue"
    cfg = parse_config('[freeze]\nmax_seconds = 5\n[hooks]\non_failure = "fail"\n[mariadb]\nenabled = true\n')
    assert cfg.max_seconds == 5.0 and cfg.on_hook_failure == "fail" and cfg.mariadb.enabled
    with pytest.raises(ConfigError, match=r"on_failure|on_hook_failure"):
        parse_config('[hooks]\non_failure = "maybe"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config("[postgresql]\nenable = true\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[freeze\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_explicit_empty_mount_list_freezes_nothing(tmp_path: Path) -> None:
    plan = plan_freeze(parse_mountinfo(MOUNTINFO), [], Topology(tmp_path), check_paths=False)
    assert plan.covers == [] and plan.skips == []


def test_hooks_dir_set_in_guest_toml_is_accepted(tmp_path: Path) -> None:
    """Issue 11 item 11: `[hooks] dir`, as docs/GUEST.md shows it, was refused with 'dir must be a PosixPath'."""
    config = tmp_path / "guest.toml"
    config.write_text('[hooks]\ndir = "/srv/hooks.d"\ntimeout = 10\n')
    assert load_config(config).hooks_dir == Path("/srv/hooks.d")
    with pytest.raises(ConfigError, match=r"\[hooks\] dir must be a Path, not 5"):
        parse_config("[hooks]\ndir = 5\n")


@pytest.mark.parametrize("value", ["1e12", "-5.0", "nan", "inf", "0", "0.5", "901"])
def test_max_seconds_outside_the_bound_in_guest_toml_is_refused(value: str) -> None:
    """Issue 11 item 10: 1e12, -5 or nan turned the watchdog's thaw off."""
    with pytest.raises(ConfigError, match=r"\[freeze\] max_seconds must be between 1 and 900 seconds"):
        parse_config(f"[freeze]\nmax_seconds = {value}\n")


def test_max_seconds_at_the_bounds_is_accepted() -> None:
    assert parse_config("[freeze]\nmax_seconds = 1\n").max_seconds == 1.0
    assert parse_config("[freeze]\nmax_seconds = 900\n").max_seconds == 900.0
