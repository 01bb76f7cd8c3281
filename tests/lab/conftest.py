"""Lab host fixtures: small labs with some of the sample VMs; every workload is stopped afterwards."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hvbackup.lab import LabHost
from hvbackup.lab.processes import workload_pids
from hvbackup.lab.sample import SAMPLE_VMS, build_sample

MakeLab = Callable[..., LabHost]


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    """make_lab("web-01", ...) -> a lab (digests recorded) with those sample VMs, built and started."""
    labs: list[LabHost] = []

    def make(*names: str, record_digests: bool = True) -> LabHost:
        lab = LabHost.create(tmp_path / f"lab{len(labs)}", record_digests=record_digests)
        labs.append(lab)
        build_sample(lab, [s for s in SAMPLE_VMS if s.name in names])
        return lab

    yield make
    for lab in labs:
        if lab.directory.exists():
            lab.destroy()


@pytest.fixture(scope="session")
def sample_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    """The whole sample, built once (tests that only read it)."""
    lab = LabHost.create(tmp_path_factory.mktemp("sample") / "lab", sample=True)
    yield lab
    lab.destroy()


@pytest.fixture(scope="session", autouse=True)
def no_workload_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    left = workload_pids(base)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"lab workload processes left running after the tests: {left}"
