"""Cache simulator benchmark: memtap's native core and pycachesim side by side on the same recorded traces.

For each workload it records the first --insns instructions after MEMTAP_START (fetches, loads and stores),
decodes the trace into memory once, then times, on one core, a two-level LRU hierarchy (unified L1 32 KiB
8-way, L2 1 MiB 16-way, 64-byte lines, write-back, write-allocate) over every record: memtap (best of --reps)
and pycachesim (its C backend called once per access, fetches as loads). It checks that both give the same
hit and miss counts and writes a "Cache simulator" section into bench/RESULTS.md.

    .venv/bin/python bench/cachesim_bench.py [--arch riscv64] [--workload W ...] [--insns N] [--reps N] [--out FILE|-]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import memtap
from memtap.analysis import cachesim
from memtap.analysis.cachesim import Config, Level
from memtap.trace.layout import KIND_FETCH, KIND_LOAD, KIND_STORE

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from guestlib import record  # noqa: E402

WORKLOADS = ("crc32", "ptrchase", "sort", "matmul")
GEOMETRY = (("L1", 32 << 10, 8), ("L2", 1 << 20, 16))
TARGET_RATE, TARGET_SPEEDUP = 50e6, 10.0
SECTION = "## Cache simulator"


def memtap_config(semantics: str) -> Config:
    return Config(levels=tuple(Level(n, size, ways=w) for n, size, w in GEOMETRY), semantics=semantics)


def time_memtap(batches: list[np.ndarray], semantics: str, reps: int) -> tuple[float, cachesim.Result]:
    best, res = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        res = cachesim.simulate(batches, memtap_config(semantics))
        best = min(best, time.perf_counter() - t)
    return best, res


def time_pycachesim(recs: np.ndarray) -> tuple[float, dict[str, dict[str, int]]]:
    import cachesim as pcs  # pycachesim's module name

    below, caches = None, []
    for name, size, ways in reversed(GEOMETRY):
        below = pcs.Cache(name, size // (64 * ways), ways, 64, "LRU", load_from=below, store_to=below)
        caches.append(below)
    mem = pcs.MainMemory()
    mem.load_to(caches[0])
    mem.store_from(caches[0])
    be = pcs.CacheSimulator(caches[-1], mem).first_level.backend
    kinds, addrs, sizes = recs["kind"].tolist(), recs["vaddr"].tolist(), recs["size"].tolist()
    load, store = be.load, be.store
    t = time.perf_counter()
    for kind, addr, size in zip(kinds, addrs, sizes, strict=True):
        if kind == KIND_STORE:
            store(addr, length=size)
        elif kind == KIND_LOAD or kind == KIND_FETCH:
            load(addr, length=size)
    dt = time.perf_counter() - t
    return dt, {c.name: {k: c.stats()[k] for k in ("HIT_count", "MISS_count", "EVICT_count")} for c in caches}


def run_workload(arch: str, program: str, insns: int, reps: int, tmp: Path) -> dict:
    path = tmp / f"{program}.trace"
    proc = record(path, arch, program, "--start-on-marker", "--max-insns", str(insns), timeout=600)
    if proc.returncode:
        raise SystemExit(f"recording {program} failed: {proc.stderr.strip()}")
    trace = memtap.open(path)
    t = time.perf_counter()
    batches = list(trace.batches(order="pos"))
    decode = time.perf_counter() - t
    recs = np.concatenate(batches)
    accesses = int(np.isin(recs["kind"], (KIND_FETCH, KIND_LOAD, KIND_STORE)).sum())
    mt_time, _ = time_memtap(batches, "memtap", reps)
    compat_time, compat = time_memtap(batches, "pycachesim", reps)
    pcs_time, theirs = time_pycachesim(recs)
    ours = {n: compat.pycachesim_counts(n) for n, *_ in GEOMETRY}
    return {"workload": program, "records": len(recs), "accesses": accesses, "decode": decode,
            "memtap": mt_time, "compat": compat_time, "pycachesim": pcs_time, "equal": ours == theirs,
            "l1_miss_rate": compat.level("L1")["miss_rate"]}


def report(rows: list[dict], args: argparse.Namespace, started: str) -> str:
    cmd = "python bench/cachesim_bench.py " + " ".join(sys.argv[1:])
    lines = [SECTION, "",
             f"{started}, {platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, pycachesim {_pycachesim_version()}. Command: `{cmd.strip()}`.",
             "",
             f"Two-level LRU hierarchy ({', '.join(f'{n} {s >> 10} KiB {w}-way' for n, s, w in GEOMETRY)}, 64-byte "
             f"lines, write-back, write-allocate) over the first {args.insns} instructions after MEMTAP_START of "
             f"each {args.arch} workload (fetches, loads and stores), trace decoded into memory first; memtap: "
             f"best of {args.reps} runs on one core; pycachesim: one run, its C backend called once per access. "
             "'equal' compares hit, miss and write-back counts per level (memtap with semantics = pycachesim).",
             "",
             "| workload | accesses | L1 miss rate | memtap | memtap, pycachesim semantics | pycachesim | speed-up "
             "| equal | trace decode |",
             "|---|---:|---:|---:|---:|---:|---:|:-:|---:|"]
    for r in rows:
        rate = {k: f"{r['accesses'] / r[k] / 1e6:.1f} M/s" for k in ("memtap", "compat", "pycachesim", "decode")}
        lines.append(f"| {r['workload']} | {r['accesses']} | {100 * r['l1_miss_rate']:.2f}% | {rate['memtap']} | "
                     f"{rate['compat']} | {rate['pycachesim']} | **{r['pycachesim'] / r['compat']:.1f}x** | "
                     f"{'✓' if r['equal'] else '✗'} | {rate['decode']} |")
    total = sum(r["accesses"] for r in rows)
    mt_rate = total / sum(r["memtap"] for r in rows)
    speedup = sum(r["pycachesim"] for r in rows) / sum(r["compat"] for r in rows)
    lowest = min(r["accesses"] / r["memtap"] for r in rows)
    lines += ["", "| target | measured | met |", "|---|---|:-:|",
              f"| >= {TARGET_RATE / 1e6:.0f} M accesses/s, two-level LRU, one core | {mt_rate / 1e6:.1f} M/s over "
              f"all workloads (lowest {lowest / 1e6:.1f} M/s) | {'✓' if mt_rate >= TARGET_RATE else '✗'} |",
              f"| >= {TARGET_SPEEDUP:.0f}x pycachesim on the same trace | {speedup:.1f}x over all workloads | "
              f"{'✓' if speedup >= TARGET_SPEEDUP else '✗'} |"]
    return "\n".join(lines) + "\n"


def _pycachesim_version() -> str:
    from importlib.metadata import version

    return version("pycachesim")


def write_section(path: Path, section: str) -> None:
    """Replace the section of RESULTS.md with the heading ``section`` starts with (or append it), leaving the
    other sections alone (the sharing benchmark writes its own section with this too)."""
    text = path.read_text() if path.exists() else ""
    heading = section.splitlines()[0]
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## (?!#)|\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="riscv64")
    ap.add_argument("--workload", action="append", choices=WORKLOADS)
    ap.add_argument("--insns", type=int, default=5_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="report file, '-' for none")
    args = ap.parse_args()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    (HERE / "out").mkdir(exist_ok=True)   # gitignored, like bench/run.py's traces
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        for program in args.workload or WORKLOADS:
            rows.append(run_workload(args.arch, program, args.insns, args.reps, Path(tmp)))
            r = rows[-1]
            print(f"{program}: {r['accesses']} accesses, memtap {r['accesses'] / r['memtap'] / 1e6:.1f} M/s, "
                  f"pycachesim {r['accesses'] / r['pycachesim'] / 1e6:.2f} M/s, equal={r['equal']}", flush=True)
    section = report(rows, args, started)
    print(section)
    if args.out != "-":
        write_section(Path(args.out), section)
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
