"""Export benchmark: how fast each `memtap export --format` format writes, on recorded workloads.

For each workload it records the first --insns instructions after MEMTAP_START (fetches, loads and stores),
reads the trace's columns into memory once, then times (best of --reps) each format's exporter writing a file
into bench/out/ from those in-memory columns: the export's time minus a plain read of the same columns, i.e. the
format's own cost (formatting, decoding instructions, following calls, simulating caches, compressing, writing).
It writes an "Export formats" section into bench/RESULTS.md.

    .venv/bin/python bench/export_bench.py [--arch riscv64] [--workload W ...] [--insns N] [--reps N] [--out FILE|-]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import memtap
from memtap.analysis.symbols import ElfSpec
from memtap.export.formats import module
from memtap.export.stream import Options, Source

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from cachesim_bench import write_section  # noqa: E402
from guestlib import guest, record  # noqa: E402

WORKLOADS = ("crc32", "matmul")
# (label, format, output name); champsim and the timelines decode the guest's ELF
CASES = (("lackey", "lackey", "t.lackey"), ("dinero", "dinero", "t.din"), ("dramsim3", "dramsim3", "t.trc"),
         ("ramulator", "ramulator", "t.ram"), ("gem5", "gem5", "t.gem5"), ("champsim", "champsim", "t.champsim"),
         ("champsim .xz", "champsim", "t.champsim.xz"), ("uftrace", "uftrace", "uftrace.data"),
         ("chrome", "chrome", "t.json"), ("ramulator-o3", "ramulator-o3", "t.o3"))
COLUMNS = ["pos", "icount", "vaddr", "paddr", "pc", "value", "vcpu", "kind", "size", "priv", "flags"]
TARGET = 10e6
SECTION = "## Export formats"


def in_memory(trace: memtap.Trace) -> Source:
    """The trace's columns read once; the source hands out those batches (the columns a format asks for)."""
    batches = list(trace.columns(COLUMNS, order="pos"))

    def columns(names: list[str]):
        for b in batches:
            yield {n: b[n] for n in names}

    return Source(columns, trace.arch, list(trace.vcpus), str(trace.path), None, trace.info.get("events"))


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def run_workload(arch: str, program: str, insns: int, reps: int, tmp: Path) -> dict:
    path = tmp / f"{program}.trace"
    proc = record(path, arch, program, "--start-on-marker", "--max-insns", str(insns), timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"recording {program} failed: {proc.stderr}")
    trace = memtap.open(path)
    source = in_memory(trace)
    records = sum(len(b["pos"]) for b in source.columns(["pos"]))
    opts = Options(elf=[ElfSpec(guest(arch, program))])
    row = {"program": program, "records": records, "times": {}, "load": [load_average()]}
    for label, fmt, name in CASES:
        best = float("inf")
        out = tmp / name
        for _ in range(reps):
            if out.is_dir():
                shutil.rmtree(out)
            elif out.exists():
                out.unlink()
            t = time.perf_counter()
            module(fmt).write(source, str(out), opts, lambda _m: None)
            best = min(best, time.perf_counter() - t)
        row["times"][label] = best
        size = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else out.stat().st_size
        row.setdefault("sizes", {})[label] = size
        print(f"{program} {label}: {records / best / 1e6:.1f} M records/s, {size} bytes", flush=True)
    path.unlink()
    row["load"].append(load_average())
    return row


def report(rows: list[dict], args: argparse.Namespace, started: str) -> str:
    lines = [SECTION, "",
             f"`bench/export_bench.py` at {started} on {platform.machine()} ({os.cpu_count()} cores), {args.arch} "
             f"guests, the first {args.insns} instructions after MEMTAP_START of each workload (fetches, loads and "
             "stores). Each format writes a file from columns already in memory (best of "
             f"{args.reps}): the export's time minus a plain read of the same columns. Target: "
             f"{TARGET / 1e6:.0f} M records/s.", "",
             "| format | " + " | ".join(f"{r['program']} M rec/s" for r in rows) + " | bytes/record | target |",
             "|---|" + "---|" * (len(rows) + 2)]
    for label, _, _ in CASES:
        rates = [r["records"] / r["times"][label] for r in rows]
        size = sum(r["sizes"][label] for r in rows) / sum(r["records"] for r in rows)
        lines.append(f"| {label} | " + " | ".join(f"{x / 1e6:.1f}" for x in rates)
                     + f" | {size:.2f} | {'met' if min(rates) >= TARGET else 'not met'} |")
    lines.append("")
    lines.append("Records: " + ", ".join(f"{r['program']} {r['records']}" for r in rows) + ". The machine's load "
                 "average (1 min) before and after each workload: "
                 + ", ".join(f"{r['program']} {r['load'][0]}, {r['load'][1]}" for r in rows)
                 + " (on 2 cores: other jobs share them, and the rates fall with it).")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="riscv64")
    ap.add_argument("--workload", action="append", choices=WORKLOADS)
    ap.add_argument("--insns", type=int, default=5_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="report file, '-' for none")
    args = ap.parse_args()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    (HERE / "out").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        rows = [run_workload(args.arch, p, args.insns, args.reps, Path(tmp)) for p in args.workload or WORKLOADS]
    section = report(rows, args, started)
    print(section)
    if args.out != "-":
        write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
