"""CSV and Parquet export benchmark, and the cache simulator fed from a trace file, against a plain read of the same
columns, on the bench suite's workloads.

For each workload it records the first --insns instructions after MEMTAP_START (fetches, loads and stores, both
addresses), then runs these modes interleaved (--reps rounds, each mode once per round), timing each in-process:

    read-export   Trace.columns() of the columns the exports decode, order pos, nothing done with them
    parquet       memtap.export.tabular.export_parquet (what `memtap export -o X.parquet` runs)
    csv           memtap.export.tabular.export_csv to a file (`memtap export -o X.csv`)
    read-cachesim Trace.columns() of the columns the cache simulator reads, order pos
    cachesim      memtap.analysis.cachesim.simulate_trace, two-level LRU (`memtap cachesim --cache ...`)

An export's own cost is its time minus the time it spent inside the reader in the same run (the plain read modes
give the reader's rate alone): the reader is the native engine's job, the export's is what it adds. Outputs go to
bench/out/ (gitignored) and are deleted afterwards.

    .venv/bin/python bench/tabular_bench.py [--arch A] [--workload W ...] [--insns N] [--reps N] [--out FILE|-]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import memtap
from memtap.analysis import cachesim
from memtap.analysis.cachesim import Config, Level
from memtap.export.tabular import export_csv, export_parquet
from memtap.trace.arrow import ARROW_COLUMNS, source_columns

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from cachesim_bench import write_section  # noqa: E402
from guestlib import record  # noqa: E402

WORKLOADS = ("crc32", "ptrchase", "sort", "matmul", "triad", "copy", "dense")
MODES = ("read-export", "parquet", "csv", "read-cachesim", "cachesim")
GEOMETRY = (("L1", 32 << 10, 8), ("L2", 1 << 20, 16))
SECTION = "## CSV and Parquet exports"
TARGETS = {"parquet": 25e6, "csv": 5e6, "cachesim": 50e6, "size": 4.0}


def config() -> Config:
    return Config(levels=tuple(Level(n, size, ways=w) for n, size, w in GEOMETRY))


class ReaderClock:
    """Wraps a Trace's columns() to add up the wall and CPU time spent inside the reader, so that a run's own cost
    (its time minus the reader's) comes from the run itself."""

    def __init__(self, trace: memtap.Trace) -> None:
        self.wall = self.cpu = 0.0
        plain = trace.columns

        def columns(*args, **kwargs):
            it = plain(*args, **kwargs)
            while True:
                t, c = time.perf_counter(), time.process_time()
                try:
                    cols = next(it)
                except StopIteration:
                    return
                finally:
                    self.wall += time.perf_counter() - t
                    self.cpu += time.process_time() - c
                yield cols

        trace.columns = columns


def read(trace: memtap.Trace, names: list[str]) -> int:
    return sum(len(cols[names[0]]) for cols in trace.columns(names, order="pos", batch_rows=1 << 20))


def runner(mode: str, trace: memtap.Trace, out: Path) -> Callable[[], int]:
    """The timed call of a mode; it returns the rows (or accesses) it handled."""
    export_columns = source_columns(ARROW_COLUMNS, bool(trace.info.get("values")))
    if mode == "read-export":
        return lambda: read(trace, export_columns)
    if mode == "parquet":
        return lambda: export_parquet(trace, out / "x.parquet", order="pos")
    if mode == "csv":
        return lambda: export_csv(trace, out / "x.csv", order="pos")
    sim_columns = cachesim.Simulator(config()).input_columns()
    if mode == "read-cachesim":
        return lambda: read(trace, sim_columns)

    def simulate() -> int:
        ops = cachesim.simulate_trace(trace, config()).ops()
        return ops["fetch"] + ops["load"] + ops["store"]

    return simulate


def run_workload(arch: str, program: str, insns: int, reps: int, tmp: Path, modes: list[str]) -> dict:
    path = tmp / f"{program}.trace"
    proc = record(path, arch, program, "--start-on-marker", "--max-insns", str(insns), timeout=1800)
    if proc.returncode:
        raise SystemExit(f"recording {program} failed: {proc.stderr.strip()}")
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    own_times: dict[str, list[float]] = {m: [] for m in modes}
    own_cpu: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for _ in range(reps):
        for mode in modes:
            trace = memtap.open(path)   # a fresh one: no instruction table left from the previous run
            clock = ReaderClock(trace)
            fn = runner(mode, trace, tmp)
            t, c = time.perf_counter(), time.process_time()
            counts[mode] = fn()
            times[mode].append(time.perf_counter() - t)
            cpu[mode].append(time.process_time() - c)
            own_times[mode].append(times[mode][-1] - clock.wall)
            own_cpu[mode].append(cpu[mode][-1] - clock.cpu)
            for name in ("x.parquet", "x.csv"):
                if (tmp / name).exists():
                    sizes[mode] = (tmp / name).stat().st_size
                    (tmp / name).unlink()
    return {"workload": program, "records": sum(memtap.open(path).end["records"].values()),
            "trace_bytes": path.stat().st_size,
            "own": {m: statistics.median(ts) for m, ts in own_times.items()},
            "own_cpu": {m: statistics.median(ts) for m, ts in own_cpu.items()},
            "median": {m: statistics.median(ts) for m, ts in times.items()},
            "cpu": {m: statistics.median(ts) for m, ts in cpu.items()}, "counts": counts, "sizes": sizes}


def rate(n: float, t: float | None) -> str:
    return "–" if not t or t <= 0 else f"{n / t / 1e6:.1f} M/s"


def rate_cells(r: dict, key: str, own_key: str) -> list[str]:
    """Rates of every mode from r[key] (median wall or CPU times), with each export's own cost from r[own_key]."""
    m, o, n = r[key], r[own_key], r["records"]
    acc = r["counts"].get("cachesim", 0)
    return [rate(n, m.get("read-export")), rate(n, m.get("parquet")), rate(n, o.get("parquet")),
            rate(n, m.get("csv")), rate(n, o.get("csv")), rate(n, m.get("read-cachesim")),
            rate(acc, m.get("cachesim")), rate(acc, o.get("cachesim"))]


def report(rows: list[dict], args: argparse.Namespace, started: str, modes: list[str]) -> str:
    cmd = "python bench/tabular_bench.py " + " ".join(sys.argv[1:])
    rev = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    lines = [SECTION, "",
             f"{started}, {platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, source revision {rev}, load average at the end "
             f"{os.getloadavg()[0]:.1f} (other work on the machine: wall times then measure it too). "
             f"Command: `{cmd.strip()}`.", "",
             f"The first {args.insns} instructions after MEMTAP_START of each {args.arch} workload, full trace "
             f"(fetches, loads, stores, both addresses); medians of {args.reps} interleaved runs of each mode. "
             "'own' = the run's time minus the time it spent inside the reader (Trace.columns) in the same run: what "
             "the export or the simulator adds to the reader, whose plain rate for the same columns is "
             "read-export (exports) and read-cachesim (simulator). Sizes: bytes per row, and the Parquet file over "
             "the trace file.", "",
             "| workload | rows | trace B/row | Parquet B/row (x trace) | read-export | parquet | parquet own | csv "
             "| csv own | read-cachesim | cachesim | cachesim own |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n, pq_size = r["records"], r["sizes"].get("parquet")
        size = "–" if pq_size is None else f"{pq_size / n:.3f} ({pq_size / r['trace_bytes']:.2f}x)"
        lines.append(f"| {r['workload']} | {n} | {r['trace_bytes'] / n:.3f} | {size} | "
                     + " | ".join(rate_cells(r, "median", "own")) + " |")
    lines += ["", "The same in rows (accesses) per second of the process's CPU time, all threads (medians):", "",
              "| workload | read-export | parquet | parquet own | csv | csv own | read-cachesim | cachesim | "
              "cachesim own |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['workload']} | " + " | ".join(rate_cells(r, "cpu", "own_cpu")) + " |")
    lines += ["", "| target | measured (lowest over the workloads) | met |", "|---|---|:-:|"]

    def lowest(mode: str, count: str | None = None) -> tuple[float, float]:
        rates, owns = [], []
        for r in rows:
            n = r["counts"][count] if count else r["records"]
            rates.append(n / r["median"][mode])
            owns.append(n / r["own"][mode] if r["own"][mode] > 0 else float("inf"))
        return min(rates), min(owns)

    for mode, what, count in (("parquet", "rows", None), ("csv", "rows", None), ("cachesim", "accesses", "cachesim")):
        if mode not in modes:
            continue
        end_to_end, own_rate = lowest(mode, count)
        goal = TARGETS[mode]
        lines.append(f"| {mode} >= {goal / 1e6:.0f} M {what}/s from a file | {end_to_end / 1e6:.1f} M/s end to end"
                     f", {own_rate / 1e6:.1f} M/s own cost | "
                     f"{'✓' if end_to_end >= goal else '✗'} |")
    if "parquet" in modes:
        worst = max(r["sizes"]["parquet"] / r["trace_bytes"] for r in rows)
        lines.append(f"| Parquet file <= {TARGETS['size']:.0f}x the trace | {worst:.2f}x | "
                     f"{'✓' if worst <= TARGETS['size'] else '✗'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="riscv64")
    ap.add_argument("--workload", action="append", choices=WORKLOADS)
    ap.add_argument("--mode", action="append", choices=MODES, help="modes to run (default: all)")
    ap.add_argument("--insns", type=int, default=20_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="report file, '-' for none")
    args = ap.parse_args()
    modes = [m for m in MODES if m in (args.mode or MODES)]
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    (HERE / "out").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        for program in args.workload or WORKLOADS:
            r = run_workload(args.arch, program, args.insns, args.reps, Path(tmp), modes)
            rows.append(r)
            print(f"{program}: {r['records']} rows, " + ", ".join(
                f"{m} {rate(r['records'], t)}" for m, t in r["median"].items()), flush=True)
    section = report(rows, args, started, modes)
    print(section)
    if args.out != "-":
        write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
