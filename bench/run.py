"""hvbackup against restic and borg on the same generated Hyper-V disk, in one run.

    bash scripts/bench.sh            # the full benchmark (about 8 GiB virtual, 2-3 GiB allocated)
    bash scripts/bench.sh --quick    # a small version for a smoke test (one round)
    bash scripts/bench.sh --rounds 5 # each comparison step five times; the table shows medians

Each tool backs up the same dynamic VHDX (restic and borg read the whole file, as they would on a
Hyper-V host; hvbackup reads only allocated blocks), then again after 1 % of the blocks changed
(hvbackup is given the changed ranges, as Hyper-V change tracking would give them), then restores.
Every command runs as its own process; its peak RSS comes from GNU time, and its time runs until
sync(2) returns after it, so that what it wrote is on disk. Before each step all dirty pages are
written back, the step's data files (source disk, repository) are dropped from the page cache, and
the disk is given a few seconds to settle, for every tool alike. Prints one table and writes
bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import GIB, MIB, change_blocks, make_os_disk, make_synthetic_disk  # noqa: E402

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
PASSWORD = "benchmark-password"
TARGETS = {
    "full_vs_restic": 4.0,        # hvbackup full backup throughput ≥ 4× restic's
    "incremental_vs_full": 0.05,  # 1 % incremental ≤ 5 % of hvbackup's own full backup time
    "restore_vs_restic": 3.0,     # restore throughput ≥ 3× restic's
    "peak_rss_mib": 400,          # hvbackup peak RSS < 400 MiB
    "huge_sparse_s": 15.0,        # 2 TiB dynamic VHDX with 64 MiB written backs up in < 15 s
    "storage_vs_borg": 1.05,      # repository no larger than borg's within 5 %
}


@dataclass
class Run:
    tool: str
    step: str
    seconds: float
    bytes: int
    peak_rss: int
    repo_size: int = 0

    @property
    def throughput(self) -> float:
        return self.bytes / self.seconds if self.seconds else 0.0


def run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, int]:
    """Run a command; (wall seconds until what it wrote is durable, peak RSS bytes of it and its
    children). The clock stops after sync(2): a backup or restore is done when its data is on disk,
    and restic and borg leave part of theirs in the page cache when they exit."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        # GNU time reports the peak RSS: the child of a large process inherits its high-water mark
        # through fork and exec, so wait4's ru_maxrss would report this benchmark's own size.
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd]
        started = time.perf_counter()
        proc = subprocess.run(timed, env={**os.environ, **(env or {})}, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=err)
        os.sync()
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"benchmark: {' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
        peak_kib = int(rss.read().split()[-1])
    return seconds, peak_kib * 1024


def cold(*paths: Path) -> None:
    """Write back everything dirty, then drop these files' pages from the page cache: each step
    reads its data cold, as a nightly backup or a restore days later does, while the programs
    themselves start warm. The same for every tool."""
    os.sync()
    for path in paths:
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    time.sleep(SETTLE_S)


SETTLE_S = 3.0
"""Pause before each step: a virtual disk keeps writing back for a while after sync returns (the
host's cache), and a backup started right after the 2 GiB copy of its source disk was measured 15 to
60 % slower than one started later."""


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Tool:
    name = ""

    def __init__(self, work: Path) -> None:
        self.repo = work / f"repo-{self.name}"
        shutil.rmtree(self.repo, ignore_errors=True)
        self.restore_dir = work / f"restore-{self.name}"
        shutil.rmtree(self.restore_dir, ignore_errors=True)
        self.restore_dir.mkdir(parents=True)


class Hvbackup(Tool):
    name = "hvbackup"
    env = {"HVBACKUP_PASSWORD": PASSWORD}

    def cli(self, *args: str) -> list[str]:
        return [str(VENV_BIN / "hvbackup"), *args]

    def init(self) -> None:
        run(self.cli("init", "--repo", str(self.repo)), self.env)

    def backup(self, disk: Path, changed: Path | None) -> tuple[float, int]:
        extra = ["--changed-ranges", str(changed)] if changed else []
        return run(self.cli("image", "backup", "--repo", str(self.repo), "--source", "bench-vm", *extra,
                            "--json", str(disk)), self.env)

    def restore(self, disk: Path) -> tuple[float, int]:
        return run(self.cli("image", "restore", "--repo", str(self.repo), "latest", "--to",
                            str(self.restore_dir / disk.name), "--json"), self.env)


class Restic(Tool):
    name = "restic"
    env = {"RESTIC_PASSWORD": PASSWORD}

    def init(self) -> None:
        run(["restic", "init", "--repo", str(self.repo)], self.env)

    def backup(self, disk: Path, changed: Path | None) -> tuple[float, int]:
        return run(["restic", "backup", "--repo", str(self.repo), "--quiet", disk.name], self.env, cwd=disk.parent)

    def restore(self, disk: Path) -> tuple[float, int]:
        return run(["restic", "restore", "latest", "--repo", str(self.repo), "--target", str(self.restore_dir)],
                   self.env)


class Borg(Tool):
    name = "borg"
    env = {"BORG_PASSPHRASE": PASSWORD, "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
           "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}
    count = 0

    def init(self) -> None:
        run(["borg", "init", "--encryption", "repokey-blake2", str(self.repo)], self.env)

    def backup(self, disk: Path, changed: Path | None) -> tuple[float, int]:
        self.count += 1
        return run(["borg", "create", "--compression", "zstd,3", f"{self.repo}::b{self.count}", disk.name],
                   self.env, cwd=disk.parent)

    def restore(self, disk: Path) -> tuple[float, int]:
        return run(["borg", "extract", f"{self.repo}::b{self.count}"], self.env, cwd=self.restore_dir)


def compare_tools(work: Path, quick: bool, rounds: int) -> tuple[list[Run], list[Run]]:
    """Every tool's full backup, incremental and restore, `rounds` times from a fresh copy of the
    disk, the tools' order rotating each round; (the median run of each tool and step, all runs)."""
    generated = work / ("os-quick.vhdx" if quick else "os.vhdx")
    print("generating the OS-like disk (cached after the first run) ...", flush=True)
    info = make_os_disk(generated, work, virtual_size=(2 if quick else 8) * GIB, scale=0.12 if quick else 1.0)
    allocated = info["allocated"]
    print(f"disk: {info['virtual_size'] / GIB:.0f} GiB virtual, {allocated / GIB:.2f} GiB allocated, "
          f"file {generated.stat().st_size / GIB:.2f} GiB", flush=True)
    runs: list[Run] = []
    for n in range(rounds):
        print(f"round {n + 1} of {rounds}", flush=True)
        classes = [Hvbackup, Restic, Borg]
        runs += one_round(work, generated, allocated, [cls(work) for cls in classes[n % 3 :] + classes[: n % 3]])
    return medians(runs), runs


def one_round(work: Path, generated: Path, allocated: int, tools: list[Tool]) -> list[Run]:
    source = work / "vm-disk.vhdx"
    shutil.copyfile(generated, source)
    runs: list[Run] = []
    for tool in tools:
        tool.init()
        cold(source)
        seconds, rss = tool.backup(source, None)
        runs.append(Run(tool.name, "full backup", seconds, allocated, rss, dir_size(tool.repo)))
        print(f"  {tool.name:9s} full backup   {seconds:7.2f} s", flush=True)
    ranges = change_blocks(source, 0.01)
    ranges_file = work / "changed.json"
    ranges_file.write_text(json.dumps(ranges))
    changed_bytes = sum(n for _, n in ranges)
    for tool in tools:
        cold(source, tool.repo)
        seconds, rss = tool.backup(source, ranges_file)
        runs.append(Run(tool.name, "1 % incremental", seconds, changed_bytes, rss, dir_size(tool.repo)))
        print(f"  {tool.name:9s} incremental   {seconds:7.2f} s", flush=True)
    for tool in tools:
        cold(tool.repo)
        seconds, rss = tool.restore(source)
        runs.append(Run(tool.name, "restore", seconds, allocated, rss, dir_size(tool.repo)))
        print(f"  {tool.name:9s} restore       {seconds:7.2f} s", flush=True)
    check_restores(tools, source)
    return runs


def medians(runs: list[Run]) -> list[Run]:
    """The run with the median time of each (tool, step), in the order they first ran."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.tool, r.step), []).append(r)
    order = {"hvbackup": 0, "restic": 1, "borg": 2}
    chosen = [sorted(g, key=lambda r: r.seconds)[(len(g) - 1) // 2] for g in groups.values()]
    steps = ["full backup", "1 % incremental", "restore"]
    return sorted(chosen, key=lambda r: (steps.index(r.step), order[r.tool]))


def check_restores(tools: list[Tool], expected: Path) -> None:
    """Every tool's restore must read back as the changed disk (virtual content)."""
    from hvbackup.disk import virtual_sha256

    want = virtual_sha256(expected)
    for tool in tools:
        got = virtual_sha256(next(tool.restore_dir.rglob("*.vhdx")))
        if got != want:
            raise SystemExit(f"benchmark: {tool.name}'s restore differs from the source disk")


def scaling(work: Path, sizes_gib: list[int]) -> list[Run]:
    runs = []
    for gib in sizes_gib:
        disk = work / f"scale-{gib}.vhdx"
        make_synthetic_disk(disk, max(16, 2 * gib) * GIB, gib * GIB)
        tool = Hvbackup(work)
        tool.init()
        cold(disk)
        seconds, rss = tool.backup(disk, None)
        runs.append(Run("hvbackup", f"full backup, {gib} GiB allocated", seconds, gib * GIB, rss))
        print(f"  scaling {gib} GiB: {seconds:.2f} s", flush=True)
        disk.unlink()
    return runs


def huge_sparse(work: Path) -> Run:
    disk = work / "huge.vhdx"
    make_synthetic_disk(disk, 2048 * GIB, 64 * MIB)
    tool = Hvbackup(work)
    tool.init()
    cold(disk)
    seconds, rss = tool.backup(disk, None)
    disk.unlink()
    print(f"  2 TiB sparse: {seconds:.2f} s", flush=True)
    return Run("hvbackup", "2 TiB dynamic VHDX, 64 MiB written", seconds, 64 * MIB, rss)


def ratios(runs: list[Run]) -> dict:
    by = {(r.tool, r.step): r for r in runs}
    hv_full, hv_inc, hv_res = by[("hvbackup", "full backup")], by[("hvbackup", "1 % incremental")], by[("hvbackup", "restore")]
    return {
        "full_vs_restic": hv_full.throughput / by[("restic", "full backup")].throughput,
        "full_vs_borg": hv_full.throughput / by[("borg", "full backup")].throughput,
        "incremental_vs_full": hv_inc.seconds / hv_full.seconds,
        "restore_vs_restic": hv_res.throughput / by[("restic", "restore")].throughput,
        "restore_vs_borg": hv_res.throughput / by[("borg", "restore")].throughput,
        "peak_rss_mib": max(r.peak_rss for r in runs if r.tool == "hvbackup") / MIB,
        "storage_vs_borg": hv_inc.repo_size / by[("borg", "1 % incremental")].repo_size,
        "storage_vs_restic": hv_inc.repo_size / by[("restic", "1 % incremental")].repo_size,
    }


def verdicts(r: dict, huge: Run | None) -> list[tuple[str, str, str, bool]]:
    out = [
        ("full backup throughput vs restic", f"≥ {TARGETS['full_vs_restic']}×", f"{r['full_vs_restic']:.2f}×",
         r["full_vs_restic"] >= TARGETS["full_vs_restic"]),
        ("1 % incremental vs own full", f"≤ {TARGETS['incremental_vs_full']:.0%}", f"{r['incremental_vs_full']:.1%}",
         r["incremental_vs_full"] <= TARGETS["incremental_vs_full"]),
        ("restore throughput vs restic", f"≥ {TARGETS['restore_vs_restic']}×", f"{r['restore_vs_restic']:.2f}×",
         r["restore_vs_restic"] >= TARGETS["restore_vs_restic"]),
        ("peak RSS", f"< {TARGETS['peak_rss_mib']} MiB", f"{r['peak_rss_mib']:.0f} MiB",
         r["peak_rss_mib"] < TARGETS["peak_rss_mib"]),
        ("repository size vs borg", f"≤ {TARGETS['storage_vs_borg']:.2f}×", f"{r['storage_vs_borg']:.3f}×",
         r["storage_vs_borg"] <= TARGETS["storage_vs_borg"]),
    ]
    if huge is not None:
        out.append(("2 TiB VHDX, 64 MiB written", f"< {TARGETS['huge_sparse_s']:.0f} s", f"{huge.seconds:.2f} s",
                    huge.seconds < TARGETS["huge_sparse_s"]))
    return out


def print_tables(runs: list[Run], r: dict, checks: list, machine: dict) -> None:
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']:.0f} GiB, "
          f"Python {machine['python']}, restic {machine['restic']}, borg {machine['borg']}")
    print(f"\n{'tool':9s} {'step':38s} {'wall s':>8s} {'MB/s':>8s} {'peak RSS MiB':>13s} {'repo MiB':>9s}")
    for x in runs:
        print(f"{x.tool:9s} {x.step:38s} {x.seconds:8.2f} {x.throughput / 1e6:8.0f} {x.peak_rss / MIB:13.0f} "
              f"{x.repo_size / MIB:9.0f}")
    print("\nratios: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    print(f"\n{'target':52s} {'goal':>10s} {'measured':>10s}  result")
    for name, goal, got, ok in checks:
        print(f"{name:52s} {goal:>10s} {got:>10s}  {'met' if ok else 'MISSED'}")


def _measured(row: dict) -> str:
    return f"{row['ratio']:.2f}×" if "ratio" in row else f"{row['seconds']:.2f} s"


def machine_facts() -> dict:
    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.split()[1]
        except (OSError, IndexError):
            return "absent"

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "python": platform.python_version(),
            "restic": version(["restic", "version"]), "borg": version(["borg", "--version"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small disks, for a smoke test")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each tool runs each step; the table shows the median (default 3)")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="scratch folder (kept as a cache)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    runs, samples = compare_tools(args.work, args.quick, 1 if args.quick else args.rounds)
    runs += scaling(args.work, [1, 2] if args.quick else [1, 2, 4, 8])
    huge = huge_sparse(args.work)
    runs.append(huge)
    import files_bench

    print("file-level restore ...", flush=True)
    files = files_bench.run(args.work / "files", file_mib=256 if args.quick else 1024,
                            entries=10_000 if args.quick else 100_000)
    r = ratios(runs)
    checks = verdicts(r, huge) + [(row["name"], row["target"], _measured(row), row["ok"]) for row in files]
    print_tables(runs, r, checks, machine)
    (HERE / ("results-quick.json" if args.quick else "results.json")).write_text(json.dumps({
        "machine": machine, "runs": [asdict(x) | {"throughput": x.throughput} for x in runs], "ratios": r,
        "rounds": [asdict(x) for x in samples],
        "targets": [{"target": n, "goal": g, "measured": m, "met": ok} for n, g, m, ok in checks],
    }, indent=2))


if __name__ == "__main__":
    main()
