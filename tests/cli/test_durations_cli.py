"""`--keep-within` and `--safety-window` share one duration grammar, and refuse a bare `m` alike."""

from __future__ import annotations

import pytest

from .cli_fixtures import run_hvbackup


@pytest.mark.parametrize(
    "args",
    [
        ["forget", "--keep-within", "1m"],
        ["forget", "--keep-last", "1", "--safety-window", "1m"],
        ["prune", "--safety-window", "1m"],
    ],
    ids=["forget-keep-within", "forget-safety-window", "prune-safety-window"],
)
def test_a_bare_m_is_refused_before_the_repository_is_opened(tmp_path, args):
    result = run_hvbackup(*args, "--repo", str(tmp_path / "none"))
    assert result.returncode == 1
    assert "`m` is ambiguous" in result.stderr and "1mo" in result.stderr and "1min" in result.stderr
