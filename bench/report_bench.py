"""memtap report benchmark: the report of a large trace (x86_64 `sort`, whole run: about 1.2 G records), its wall
time and peak memory, with the cost of reading the records and the cost of the report's own aggregation apart.

    .venv/bin/python bench/report_bench.py [--trace FILE] [--cache PRESET] [--sample N] [--out FILE|-]

It records the trace into bench/out/ (gitignored) unless --trace names one, then:
1. runs the whole report (`build` + `render`, as `memtap report` does) in a child process and takes its wall
   time, peak resident memory (ru_maxrss) and its own split of the file-order pass into time spent inside the
   aggregation (the native core and the time-axis records) and the rest (reading: Trace.columns);
2. measures the aggregation core alone on the first --sample records held in memory (so no reading at all),
   and the reader alone on the same records.
It writes a "Report" section into bench/RESULTS.md. Targets: the report of a 1 G-record trace in under two minutes
on 2 cores, peak memory under 1 GiB.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from cachesim_bench import write_section  # noqa: E402

SECTION = "## Report"
TARGET_SECONDS, TARGET_BYTES = 120.0, 1 << 30


def child(trace: str, cache: str | None, page: str) -> None:
    """The measured run: the report of trace, timed inside, its peak memory from the kernel."""
    import memtap
    from memtap.analysis import cachesim
    from memtap.report import build, render

    t0 = time.perf_counter()
    timing = build.Timing()
    opts = build.Options(cache=cachesim.preset(cache) if cache else None)
    doc = build.build(memtap.open(trace), opts, lambda m: None, timing)
    t1 = time.perf_counter()
    render.write(doc, page)
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"records": doc["overview"]["records"], "build": t1 - t0, "render": t2 - t1,
                      "first_pass": timing.first_pass, "first_pass_cpu": timing.first_pass_cpu,
                      "aggregating_cpu": timing.aggregating_cpu, "ordered_pass": timing.ordered_pass,
                      "page_bytes": os.path.getsize(page), "cpu": usage.ru_utime + usage.ru_stime,
                      "maxrss_bytes": usage.ru_maxrss * 1024}))


def core_alone(trace: str, sample: int) -> dict[str, float]:
    """Records per second of the reader and of the aggregation core on the first `sample` records."""
    import memtap
    from memtap.report import native
    from memtap.report.aggregate import BATCH_ROWS, HEAT_CELLS, TIME_BINS

    wanted = [*native.COLUMN_TYPES, "value"]
    batches, n = [], 0
    t0 = time.perf_counter()
    for cols in memtap.open(trace).columns(wanted, batch_rows=BATCH_ROWS):
        batches.append(cols)
        n += len(cols["pos"])
        if n >= sample:
            break
    read = time.perf_counter() - t0
    core = native.Aggregator(TIME_BINS, HEAT_CELLS)
    t0 = time.perf_counter()
    for cols in batches:
        core.feed(cols)
    agg = time.perf_counter() - t0
    core.close()
    return {"records": n, "read_rate": n / read, "core_rate": n / agg, "core_ns": 1e9 * agg / n}


def record_trace(out: Path) -> Path:
    from guestlib import record

    path = out / "sort-x86_64.trace"
    if not path.exists():
        proc = record(path, "x86_64", "sort", timeout=1200)
        if proc.returncode:
            raise SystemExit(f"recording failed: {proc.stderr}")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", help="trace file (default: record x86_64 sort into bench/out/)")
    ap.add_argument("--cache", help="also simulate this cache preset (adds the pass in global order)")
    ap.add_argument("--sample", type=int, default=16_000_000, help="records for the core-alone measurement")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="report file, '-' for none")
    ap.add_argument("--wall", action="store_true", help="judge the time target by wall time (default: CPU time, "
                    "for a machine others share)")
    ap.add_argument("--child", nargs=2, metavar=("TRACE", "PAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.cache, args.child[1])
        return 0
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    (HERE / "out").mkdir(exist_ok=True)
    trace = Path(args.trace) if args.trace else record_trace(HERE / "out")
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        cmd = [sys.executable, __file__, "--child", str(trace), str(Path(tmp) / "report.html")]
        cmd += ["--cache", args.cache] if args.cache else []
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr)
        run = json.loads(proc.stdout.strip().splitlines()[-1])
    alone = core_alone(str(trace), args.sample)
    rec = run["records"]
    agg = run["aggregating_cpu"]
    reading = run["first_pass_cpu"] - agg
    total = wall if args.wall else run["cpu"]

    def row(step: str, wall_s: float | None, cpu_s: float | None) -> str:
        per = f"{1e9 * cpu_s / rec:.1f} ns" if cpu_s else ""
        rate = f"{rec / cpu_s / 1e6:.1f} M/s" if cpu_s else ""
        return f"| {step} | {'' if wall_s is None else f'{wall_s:.1f}'} | " \
               f"{'' if cpu_s is None else f'{cpu_s:.1f}'} | {rate} | {per} |"

    lines = [
        SECTION, "",
        f"{started}, {platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end. Command: "
        f"`{' '.join([Path(sys.executable).name, *sys.argv])}`.", "",
        f"`memtap report` of {trace.name} ({rec:,} records, {trace.stat().st_size / 1e6:.0f} MB)"
        f"{' with --cache ' + args.cache if args.cache else ''}, in a child process. CPU seconds are the child's "
        "(its own thread for the pass's parts), so other work on a shared machine does not inflate them; wall "
        "seconds do.", "",
        "| step | wall s | CPU s | records per CPU second | CPU per record |", "|---|---:|---:|---:|---:|",
        row("whole run (process start to exit)", wall, run["cpu"]),
        row("file-order pass", run["first_pass"], run["first_pass_cpu"]),
        row("&nbsp;&nbsp;reading the records (Trace.columns)", None, reading),
        row("&nbsp;&nbsp;aggregation (native core, time-axis records)", None, agg),
        row("pass in global order (cache, transfers)", run["ordered_pass"], None),
        row(f"page ({run['page_bytes'] / 1e6:.1f} MB)", run["render"], None), "",
        f"Peak memory (ru_maxrss of the child): {run['maxrss_bytes'] / 2**20:.0f} MiB. On the first "
        f"{alone['records']:,} records held in memory: the reader alone {alone['read_rate'] / 1e6:.1f} M records/s, "
        f"the aggregation core alone {alone['core_rate'] / 1e6:.1f} M records/s "
        f"({alone['core_ns']:.1f} ns/record; wall time).", "",
        "| target | measured | met |", "|---|---|:-:|",
        f"| report of a 1 G-record trace in < {TARGET_SECONDS:.0f} s | {total:.1f} s "
        f"({'wall' if args.wall else 'CPU'}) for {rec / 1e9:.2f} G records, of which reading {reading:.1f} s "
        f"and aggregation {agg:.1f} s | "
        f"{'✓' if total < TARGET_SECONDS else '✗'} |",
        f"| peak memory < 1 GiB | {run['maxrss_bytes'] / 2**20:.0f} MiB | "
        f"{'✓' if run['maxrss_bytes'] < TARGET_BYTES else '✗'} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        write_section(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
