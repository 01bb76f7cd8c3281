"""`hvbackup-guest check --root` on guest trees laid out like real ones (guest_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import guest_fixtures as fx


def _check(guest_cli, root: Path) -> dict:  # type: ignore[no-untyped-def]
    res = guest_cli("check", "--json", "--root", root)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _by_id(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for f in report["findings"]:
        assert set(f) == {"id", "severity", "title", "evidence", "remedy"}
        assert f["severity"] in {"blocker", "warning", "advice", "info"} and f["remedy"]
        found.setdefault(f["id"], []).append(f)
    return found


def test_healthy_hyperv_guest_has_no_findings(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    report = _check(guest_cli, fx.healthy(tmp_path))
    assert report["hyperv"] is True
    assert report["findings"] == []
    assert [m["mountpoint"] for m in report["freeze_covers"]] == ["/var/lib/postgresql", "/"]
    assert {s["mountpoint"]: s["reason"] for s in report["freeze_skips"]}["/boot/efi"].startswith("vfat")
    assert report["vss_daemon"]["running"] == {"hvbackup-guest": 612}
    assert report["vss_daemon"]["units"]["hv-vss-daemon.service"] == "masked"
    assert report["nics"] == [{"name": "eth0", "driver": "hv_netvsc", "kind": "synthetic"}]


def test_problem_guest_reports_each_problem_with_its_remedy(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    report = _check(guest_cli, fx.problems(tmp_path))
    found = _by_id(report)
    assert report["hyperv"] is True
    assert found["stock-vss-daemon"][0]["evidence"].startswith("hypervvssd pid 733; unit hypervvssd.service")
    assert found["stock-vss-daemon"][0]["remedy"].startswith("hvbackup-guest install")
    assert "hv_netvsc" in found["hv-modules-missing"][0]["evidence"]
    assert found["legacy-nic"][0]["title"].startswith("eth1")
    assert "eth0 (hv_netvsc), eth1 (tulip)" in found["mixed-nics"][0]["evidence"]
    assert [f["remedy"] for f in found["io-scheduler"]] == [
        'echo none > /sys/block/sda/queue/scheduler && echo \'ACTION=="add|change", KERNEL=="sd[a-z]*", '
        'ATTR{queue/scheduler}="none"\' > /etc/udev/rules.d/60-hvbackup-scheduler.rules'
    ]
    assert sorted(f["title"].split()[-1] for f in found["fstab-device-name"]) == ["/dev/sda1", "/dev/sdb1"]
    assert "blkid -s UUID -o value /dev/sdb1" in found["fstab-device-name"][1]["remedy"]
    not_frozen = {f["evidence"].split(" on ")[1].split(":")[0] for f in found["not-frozen-mount"]}
    assert not_frozen == {"/mnt/share", "/mnt/sshfs", "/var/lib/docker/overlay2/abc/merged", "/mnt/image"}
    assert found["xfs-relatime"][0]["remedy"].startswith("mount -o remount,noatime /srv/data")
    assert found["no-trim"][0]["remedy"] == "systemctl enable --now fstrim.timer"
    assert found["no-time-sync"][0]["severity"] == "warning"
    assert [m["mountpoint"] for m in report["freeze_covers"]] == ["/srv/data", "/"]
    skips = {s["mountpoint"]: s["reason"] for s in report["freeze_skips"]}
    assert skips["/mnt/ro"] == "mounted read-only"
    assert skips["/srv/bind dir"].startswith("same filesystem as /srv/data")
    severities = [f["severity"] for f in report["findings"]]
    assert severities == sorted(severities, key=["blocker", "warning", "advice", "info"].index)


def test_missing_vss_integration_service_is_a_blocker(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    root = fx.healthy(tmp_path)
    vss_dev = root / "sys/bus/vmbus/devices/2dd1ce17-079e-403c-b352-a1921ee207ee/class_id"
    vss_dev.unlink()
    (root / "proc/612/comm").unlink()
    (root / "proc/612/cmdline").unlink()
    found = _by_id(_check(guest_cli, root))
    assert found["vss-ic-disabled"][0]["severity"] == "blocker"
    assert "Backup (volume shadow copy)" in found["vss-ic-disabled"][0]["remedy"]
    assert found["no-vss-daemon"][0]["severity"] == "blocker"


def test_machine_that_is_not_hyperv_says_so(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    report = _check(guest_cli, fx.not_hyperv(tmp_path))
    assert report["hyperv"] is False
    assert [f["id"] for f in report["findings"]] == ["not-hyperv"]
    assert "QEMU" in report["hyperv_evidence"]


def test_human_output_and_bad_root(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    res = guest_cli("check", "--root", fx.problems(tmp_path))
    assert res.returncode == 0 and "legacy-nic" in res.stdout and "Hyper-V guest: yes" in res.stdout
    bad = guest_cli("check", "--root", tmp_path / "missing")
    assert bad.returncode == 1 and "not a directory" in bad.stderr and "Traceback" not in bad.stderr


def test_check_prints_every_fix_command_whole_at_80_columns(tmp_path: Path) -> None:
    """Friction: at 80 columns the table cut fix commands short ('…'), and a command must be copied whole."""
    import os
    import subprocess

    from guest_helpers import GUEST_CLI

    root = fx.problems(tmp_path)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "80"}
    human = subprocess.run([*GUEST_CLI, "check", "--root", root], capture_output=True, text=True, env=env, timeout=60)
    report = subprocess.run(
        [*GUEST_CLI, "check", "--json", "--root", root], capture_output=True, text=True, env=env, timeout=60
    )
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    remedies = [f["remedy"] for f in json.loads(report.stdout)["findings"]]
    assert any(len(r) > 80 for r in remedies)  # the case that was cut
    for remedy in remedies:
        assert f"  fix: {remedy}" in lines
    assert "…" not in human.stdout
