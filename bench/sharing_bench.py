"""Sharing analysis benchmark: how fast `memtap sharing`'s core and the trace reader feeding it run.

Records two riscv64 workloads with loads and stores only: `sort` (one vCPU, the first --insns instructions: many
records, every line private) and `share` (4 vCPUs, false and true sharing on a few lines: nearly every record
reaches the detailed second pass; its records are fed SHARE_REPEAT times over, one stream, for a run long
enough to time). Reads each trace's columns in pos order into memory (timed: the reader), then times the core's
two passes over them (CPU time, best of --reps), and a synthetic worst case for the line table,
SYNTHETIC_RECORDS accesses by 4 vCPUs in runs of 16, 10% on 16 shared lines and the rest at random over 256 Ki
private lines per vCPU (a footprint far beyond the host's caches). Writes a "Sharing analysis" section into
bench/RESULTS.md.

    .venv/bin/python bench/sharing_bench.py [--insns N] [--reps N] [--out FILE|-]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import memtap
from memtap.analysis.sharing.passes import PASS2_COLUMNS, run_passes
from memtap.trace.layout import KIND_LOAD, KIND_STORE, RF_PADDR

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]
from cachesim_bench import write_section  # noqa: E402
from guestlib import record  # noqa: E402

SECTION = "## Sharing analysis"
COLUMNS = list(dict.fromkeys([*PASS2_COLUMNS, "paddr"]))
SYNTHETIC_RECORDS = 16 << 20
SHARE_REPEAT = 64
TARGET_RATE = 20e6  # "tens of millions of records per second": both passes together, on the recorded workloads


def read_columns(path: Path) -> tuple[list[dict[str, np.ndarray]], float]:
    trace = memtap.open(path)
    t = time.perf_counter()
    batches = list(trace.columns(COLUMNS, kinds=["load", "store"], order="pos", batch_rows=1 << 20))
    return batches, time.perf_counter() - t


def synthetic(seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    runs = SYNTHETIC_RECORDS // 16
    vcpu = np.repeat(rng.integers(0, 4, runs), 16).astype(np.uint16)
    private = (np.uint64(0x80000000) + vcpu.astype(np.uint64) * np.uint64(1 << 24)
               + rng.integers(0, 1 << 24, SYNTHETIC_RECORDS).astype(np.uint64)) & ~np.uint64(7)
    hot = np.uint64(0x70000000) + (rng.integers(0, 16 * 8, SYNTHETIC_RECORDS).astype(np.uint64) << np.uint64(3))
    addr = np.where(rng.random(SYNTHETIC_RECORDS) < 0.1, hot, private).astype(np.uint64)
    kind = np.where(rng.random(SYNTHETIC_RECORDS) < 0.3, KIND_STORE, KIND_LOAD).astype(np.uint8)
    cols = {"vcpu": vcpu, "kind": kind, "vaddr": addr, "paddr": addr, "size": np.full(SYNTHETIC_RECORDS, 8, np.uint8),
            "flags": np.full(SYNTHETIC_RECORDS, RF_PADDR, np.uint8),
            "pc": (0x1000 + 4 * rng.integers(0, 64, SYNTHETIC_RECORDS)).astype(np.uint64)}
    step = 1 << 20
    return [{k: v[s: s + step] for k, v in cols.items()} for s in range(0, SYNTHETIC_RECORDS, step)]


def time_core(batches: list[dict[str, np.ndarray]], reps: int) -> tuple[float, int]:
    """Best CPU time of both passes (keyed by physical address), and the shared lines found."""
    best, shared = float("inf"), 0
    for _ in range(reps):
        t = time.process_time()
        p = run_passes(lambda names: iter(batches), 64, physical=True)
        best = min(best, time.process_time() - t)
        shared = p.multi_sharer_lines
    return best, shared


def measure(name: str, batches: list[dict[str, np.ndarray]], read: float | None, reps: int) -> dict:
    n = sum(len(b["kind"]) for b in batches)
    core, shared = time_core(batches, reps)
    return {"workload": name, "records": n, "shared": shared, "core": core, "read": read}


def report(rows: list[dict], args: argparse.Namespace, started: str) -> str:
    cmd = "python bench/sharing_bench.py " + " ".join(sys.argv[1:])
    lines = [SECTION, "",
             f"{started}, {platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}. Command: `{cmd.strip()}`.", "",
             "Loads and stores in pos order. 'core': both passes of `memtap sharing`'s C core over columns already "
             f"in memory, CPU time, best of {args.reps}; 'reader': `Trace.columns(order=\"pos\")` of the same "
             "records, wall time, once. riscv64 traces recorded with `--events load,store` (sort: the first "
             f"{args.insns} instructions).", "",
             "| workload | records | shared lines | core | reader |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        rd = "-" if r["read"] is None else f"{r['records'] / r['read'] / 1e6:.1f} M/s"
        lines.append(f"| {r['workload']} | {r['records']} | {r['shared']} | "
                     f"{r['records'] / r['core'] / 1e6:.1f} M/s | {rd} |")
    lowest = min(r["records"] / r["core"] for r in rows if r["read"] is not None)
    lines += ["", "| target | measured | met |", "|---|---|:-:|",
              f"| core >= {TARGET_RATE / 1e6:.0f} M records/s, both passes, recorded workloads | lowest "
              f"{lowest / 1e6:.1f} M/s | {'✓' if lowest >= TARGET_RATE else '✗'} |"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--insns", type=int, default=40_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="report file, '-' for none")
    args = ap.parse_args()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    (HERE / "out").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        for program, options, smp in (("sort", ["--max-insns", str(args.insns)], 1),
                                      ("share", ["--start-on-marker"], 4)):
            path = Path(tmp) / f"{program}.trace"
            proc = record(path, "riscv64", program, "--events", "load,store", *options, smp=smp, timeout=900)
            if proc.returncode:
                raise SystemExit(f"recording {program} failed: {proc.stderr.strip()}")
            batches, read = read_columns(path)
            repeat = SHARE_REPEAT if program == "share" else 1
            name = f"{program} (its records {repeat} times over)" if repeat > 1 else program
            rows.append(measure(name, batches * repeat, read * repeat, args.reps))
            print(rows[-1], flush=True)
    rows.append(measure("synthetic, random private footprint", synthetic(), None, args.reps))
    print(rows[-1], flush=True)
    section = report(rows, args, started)
    print(section)
    if args.out != "-":
        write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
