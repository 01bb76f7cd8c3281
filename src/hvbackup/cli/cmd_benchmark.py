"""`hvbackup benchmark`: how fast this machine can run each step of a backup."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, emit, handle_errors, human_bytes, stderr, stdout
from hvbackup.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark_cmd)


@handle_errors
def benchmark_cmd(
    size_mib: Annotated[int, typer.Option(help="Data per measurement, in MiB.")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Measure read, keyed BLAKE3, zstd, AES-GCM and the whole pipeline on this machine.

    Example: hvbackup benchmark --size-mib 512 --json
    """
    from hvbackup.apps.benchmark import measure_pipeline, measure_primitives

    if size_mib < 1:
        raise UsageError(f"--size-mib must be at least 1, not {size_mib}")
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    if not as_json:
        stderr.print(f"measuring on {cores} cores with {size_mib} MiB per step ...")
    results = measure_primitives(size_mib * 1024 * 1024, threads)
    results.append(measure_pipeline(size_mib * 1024 * 1024))
    emit({"cores": cores, "results": [m.to_json() for m in results]}, as_json, _render)


def _render(data: dict) -> None:
    table = Table(title=f"hvbackup benchmark ({data['cores']} cores)")
    table.add_column("step")
    table.add_column("threads", justify="right")
    table.add_column("throughput", justify="right")
    for m in data["results"]:
        table.add_row(m["name"], str(m["threads"]), f"{human_bytes(m['bytes_per_s'])}/s")
    stdout.print(table)
