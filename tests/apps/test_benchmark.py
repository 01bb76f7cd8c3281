"""`hvbackup benchmark` measures every step of the hot path on this machine."""

from __future__ import annotations

from tests.engine.conftest import cli

STEPS = {"read (page cache)", "keyed BLAKE3", "zstd decompress", "AES-256-GCM encrypt", "whole backup pipeline"}


def test_benchmark_reports_every_step_with_a_throughput() -> None:
    done = cli("benchmark", "--size-mib", "8", "--json", password=None)
    assert done.code == 0, done.stderr
    report = done.json()
    names = {m["name"] for m in report["results"]}
    assert names >= STEPS and any(n.startswith("zstd compress (level ") for n in names)
    for m in report["results"]:
        assert m["bytes"] >= 8 * 1024 * 1024 and m["seconds"] > 0 and m["bytes_per_s"] > 0, m


def test_benchmark_prints_a_table() -> None:
    done = cli("benchmark", "--size-mib", "4", password=None)
    assert done.code == 0, done.stderr
    assert "keyed BLAKE3" in done.stdout and "whole backup pipeline" in done.stdout
