"""memtap benchmark: wall time of whole guest runs under plain QEMU and under the plugin in several modes.

Each traced run calls memtap.record.run() in-process and times exactly that call, so memtap's Python start-up is
not counted but everything the plugin costs (including writing the trace) is. Modes run interleaved per workload,
repeated --reps times, and the median is reported. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import memtap
from memtap.record import qemu
from memtap.record.ring_options import RingOptions, default_name
from memtap.record.runner import RecordOptions
from memtap.record.runner import run as record_run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The dense workloads (triad, copy, dense) make a load or store every few instructions: no workload mix hides
# what each access costs there.
WORKLOADS = ("crc32", "ptrchase", "sort", "matmul", "triad", "copy", "dense")
DEFAULT_ARCHES = ("x86_64", "riscv64", "aarch64")
MODES = ("plain", "floor-data", "floor-hw", "floor-full", "floor-fullhw", "null-full", "file-full", "file-data",
         "file-data-virt", "file-fetch", "file-counts", "ring-c", "ring-py", "ring-c-records")
# Not memtap: bench/floor_plugin.c, the instrumentation memtap needs with callbacks that do nothing.
FLOOR_MODES = {"floor-data": "data", "floor-hw": "hw", "floor-full": "full", "floor-fullhw": "fullhw"}
MODE_HELP = {
    "plain": "the QEMU command alone",
    "floor-data": "not memtap: bench/floor_plugin.c with an empty callback at every load and store, the least any "
                  "data tracer on QEMU's plugin API costs",
    "floor-hw": "not memtap: floor-data plus QEMU's physical-address lookup at every access (qemu_plugin_get_hwaddr, "
                "then its physical address and IO flag), the least a data tracer with physical addresses costs",
    "floor-full": "not memtap: floor-data plus an empty callback per block and an inline store per instruction "
                  "(memtap's fetch instrumentation)",
    "floor-fullhw": "not memtap: floor-full plus the physical-address lookup of floor-hw: the floor of a full trace "
                    "with both addresses",
    "null-full": "all events, both addresses, records dropped in the plugin (--sink null)",
    "file-full": "all events, both addresses, written to a trace file",
    "file-data": "--events load,store, written to a trace file",
    "file-data-virt": "--events load,store --addr virtual (no physical lookup), written to a trace file",
    "file-fetch": "--events fetch (ordered execution trace), written to a trace file",
    "file-counts": "--counts (per-block execution and per-instruction access counters), written to a trace file",
    "ring-c": "all events into the live ring only (--ring, no file), read by examples/ring_count.c, which counts",
    "ring-py": "all events into the live ring only, read by a Python client (memtap.ring) that counts by kind",
    "ring-c-records": "as ring-c, with --ring-fetches records (one 64-byte ring record per fetch, no runs)",
}

# The ring modes' Python client: count every record by kind (a fetch run as its fetches, a run load/store as its
# fetches and its access) on the ring's own zero-copy batches, print what examples/ring_count.c prints, and the CPU
# time it spent from attaching to the end of the stream (waits for the producer block in futex(2), using none):
# the records it counted per second of that is the rate it can keep up with.
RING_PY_CLIENT = """
import sys, time, numpy as np
from memtap.live import ring
from memtap.trace.layout import (KIND_FETCH, KIND_FETCH_RUN, KIND_LOAD, KIND_NAMES, KIND_RUN_LOAD, KIND_RUN_STORE,
                           KIND_STORE)
n = np.zeros(len(KIND_NAMES), np.int64)
with ring.connect(sys.argv[1], timeout=30, expand=False) as c:
    cpu = time.process_time()
    for b in c:
        kind = b["kind"]
        by_kind = np.bincount(kind, minlength=KIND_RUN_STORE + 1)
        n += by_kind[: len(KIND_NAMES)]
        n[KIND_LOAD] += by_kind[KIND_RUN_LOAD]
        n[KIND_STORE] += by_kind[KIND_RUN_STORE]
        n[KIND_FETCH] += int(b["size"][kind == KIND_FETCH_RUN].sum(dtype=np.int64))
        n[KIND_FETCH] += int(b["fetches"].sum(dtype=np.int64))  # 0 but in run loads/stores
    cpu = time.process_time() - cpu
for name, count in zip(KIND_NAMES, n):
    print(name, count)
print("cpu_s", cpu)
"""


def floor_plugin(tmp: Path) -> Path:
    """bench/floor_plugin.c, compiled once into tmp."""
    so = tmp / "floor_plugin.so"
    if not so.exists():
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(REPO / "plugin"),
                        str(HERE / "floor_plugin.c"), "-o", str(so)], check=True)
    return so


def ring_client(mode: str, name: str, tmp: Path) -> subprocess.Popen:
    """Starts the ring mode's counting client (compiling the C example once into tmp)."""
    if mode == "ring-py":
        cmd = [sys.executable, "-c", RING_PY_CLIENT, name]
    else:
        exe = tmp / "ring_count"
        if not exe.exists():
            subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-I", str(REPO / "include"),
                            str(REPO / "examples" / "ring_count.c"), "-o", str(exe)], check=True)
        cmd = [str(exe), name]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


@dataclass(frozen=True)
class Target:
    """A goal the results are checked against: geomean slowdown or per-workload throughput of one mode."""

    label: str
    mode: str
    kind: str  # "geomean_max" (slowdown <= value), "geomean_vs" (<= mode `other`'s), "rate_min" (records/s of
    # wall time >= value on every workload), "client_rate_min" (records per second of the ring client's CPU time)
    # or "ratio_max" (median time / mode `other`'s median time <= value on every arch and workload)
    value: float
    other: str = ""


# Recording against the plugin API's own floor, measured in the same run on every workload (the absolute
# slowdown and rate targets of earlier releases are retired: on dense code they sat below QEMU's own lookup cost).
TARGETS = (
    Target("file-full <= 1.3x floor-fullhw (every workload)", "file-full", "ratio_max", 1.3, other="floor-fullhw"),
    Target("file-data <= 1.3x floor-hw (every workload)", "file-data", "ratio_max", 1.3, other="floor-hw"),
    Target("file-data-virt <= 1.5x floor-data (every workload)", "file-data-virt", "ratio_max", 1.5,
           other="floor-data"),
    Target("ring-c <= file-full (every workload)", "ring-c", "ratio_max", 1.0, other="file-full"),
    Target("file-fetch geomean slowdown <= 3x", "file-fetch", "geomean_max", 3.0),
    Target("file-counts geomean slowdown <= 1.3x", "file-counts", "geomean_max", 1.3),
    Target("ring-py client keeps up with >= 50 M records/s (every workload)", "ring-py", "client_rate_min", 50e6),
)


@dataclass
class Cell:
    """Measurements of one (arch, workload, mode): raw times and what the trace held."""

    arch: str
    workload: str
    mode: str
    times: list[float] = field(default_factory=list)
    records: dict[str, int] | None = None
    file_bytes: list[int] = field(default_factory=list)
    records_from: str | None = None  # set when the counts were borrowed from another mode (null-full)
    client_cpu: list[float] = field(default_factory=list)  # ring-py: the client's CPU seconds per run

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def total_records(self) -> int | None:
        return sum(self.records.values()) if self.records else None


def load_guest_builder() -> ModuleType:
    """guest/build.py is a script, not a package: load it by path (as guest/README.md says)."""
    spec = importlib.util.spec_from_file_location("guest_build", REPO / "guest" / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def options_for(mode: str, out: Path) -> RecordOptions | None:
    """The RecordOptions a traced mode uses (None for plain); mirrors the documented memtap record lines."""
    if mode == "plain" or mode in FLOOR_MODES:
        return None
    if mode == "null-full":
        return RecordOptions(out=None, sink="null")
    if mode == "file-full":
        return RecordOptions(out=out)
    if mode == "file-data":
        return RecordOptions(out=out, events=("load", "store"))
    if mode == "file-data-virt":
        return RecordOptions(out=out, events=("load", "store"), addresses="virtual")
    if mode == "file-fetch":
        return RecordOptions(out=out, events=("fetch",))
    if mode == "file-counts":
        return RecordOptions(out=out, counts=True)
    if mode in ("ring-c", "ring-py", "ring-c-records"):
        fetches = "records" if mode == "ring-c-records" else "runs"
        return RecordOptions(out=None, sink="null", ring=RingOptions(default_name(), wait=1, fetches=fetches))
    raise ValueError(mode)


@contextlib.contextmanager
def redirected(log: Path) -> Iterator[None]:
    """Points fds 0/1/2 at /dev/null and LOG while QEMU runs: its console must neither clutter nor slow the run."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    with open(os.devnull, "rb") as null, open(log, "wb") as out:
        try:
            os.dup2(null.fileno(), 0)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            yield
        finally:
            for fd, old in zip((0, 1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)


def checksum_line(text: str, workload: str) -> str | None:
    """The guest's `NAME: checksum=0x...` output, wherever it is (x86 firmware text may precede it on its line)."""
    m = re.search(rf"{re.escape(workload)}: checksum=0x[0-9a-f]+", text)
    return m[0] if m else None


def run_once(cmd: list[str], mode: str, workload: str, tmp: Path) -> tuple[float, str, dict[str, int] | None, int,
                                                                         float | None]:
    """One timed run; returns (seconds, guest checksum line, END record counts, file size, the ring-py client's CPU
    seconds) and deletes the trace."""
    trace = tmp / "run.trace"
    log = tmp / "console.log"
    options = options_for(mode, trace)
    client = None
    client_cpu = None
    if mode in FLOOR_MODES:
        cmd = [*cmd, "-plugin", f"{floor_plugin(tmp)},mode={FLOOR_MODES[mode]}"]
    with redirected(log):
        if options is None:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=os.environ.copy())
            status = proc.wait()
            elapsed = time.perf_counter() - t0
        else:
            client = ring_client(mode, options.ring.name, tmp) if options.ring else None
            t0 = time.perf_counter()
            status = record_run(cmd, options).returncode
            elapsed = time.perf_counter() - t0
    console = log.read_text(errors="replace")
    if client is not None:  # the ring's records, as its client counted them
        counted = dict(line.split() for line in client.communicate(timeout=600)[0].splitlines())
        client_cpu = float(counted.pop("cpu_s")) if "cpu_s" in counted else None
        records = {k: int(v) for k, v in counted.items() if k not in ("lost", "joined_seq", "first_pos")}
    line = checksum_line(console, workload)
    if status != 0 or line is None:
        raise RuntimeError(f"{mode} {workload}: QEMU exited with {status}, checksum line "
                           f"{'found' if line else 'missing'}; console:\n{console[-3000:]}")
    size = 0
    if options is None or options.ring is None:
        records = None
    try:
        if options is not None and options.sink == "file":
            size = trace.stat().st_size
            tr = memtap.open(trace)
            if tr.end is None:
                raise RuntimeError(f"{mode} {workload}: the trace has no END chunk (truncated)")
            if "records" in tr.end:   # a counts-mode trace has counters, not records
                records = {k: int(v) for k, v in tr.end["records"].items()}
    finally:
        trace.unlink(missing_ok=True)
    return elapsed, line, records, size, client_cpu


# (mode, the floor it is held to) for the per-workload floor table.
FLOOR_PAIRS = (("file-full", "floor-fullhw"), ("null-full", "floor-fullhw"), ("file-data", "floor-hw"),
               ("file-data-virt", "floor-data"), ("ring-c", "file-full"))


def profile(cmd: list[str], tmp: Path, top: int = 12) -> list[tuple[float, str, str]]:
    """The hottest (percent, object, symbol) of one full-trace recording (`memtap record -o T`, QEMU included),
    sampled by perf on CPU time (the machine may have no hardware counters)."""
    data, trace = tmp / "perf.data", tmp / "profile.trace"
    record = [sys.executable, "-m", "memtap.cli.main", "record", "-o", str(trace), "--", *cmd]
    with redirected(tmp / "profile.log"):
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-o", str(data), "--", *record],
                       check=True)
    trace.unlink(missing_ok=True)
    text = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "dso,symbol", "--percent-limit",
                           "0.5"], capture_output=True, text=True, check=True).stdout
    data.unlink(missing_ok=True)
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)(?:\s+-\s+-)?\s*$", line)
        if m:
            rows.append((float(m[1]), m[2], m[3]))
    return rows[:top]


def geomean(xs: list[float]) -> float | None:
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def slowdowns(cells: dict[tuple[str, str, str], Cell], mode: str, arches: list[str]) -> list[float]:
    out = []
    for (a, w, m), c in cells.items():
        if m == mode and a in arches and (a, w, "plain") in cells:
            out.append(c.median / cells[(a, w, "plain")].median)
    return out


def rate(c: Cell) -> float | None:
    n = c.total_records
    return n / c.median if n else None


def client_rate(c: Cell) -> float | None:
    """Records per second of the ring client's own CPU time: the stream rate it could keep up with."""
    n = c.total_records
    return n / statistics.median(c.client_cpu) if n and c.client_cpu else None


# ---------------------------------------------------------------------------------------------------- report


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(arches: list[str], gb: ModuleType) -> dict[str, str]:
    """What the numbers depend on: CPU, cores, memory, OS, QEMU, memtap, source revision."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
                 platform.processor() or "unknown")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = next((ln.split(":", 1)[1].strip() for ln in meminfo.splitlines() if ln.startswith("MemTotal")), "?")
    if mem.endswith(" kB") and mem[:-3].isdigit():
        mem = f"{int(mem[:-3]) / 1024 ** 2:.1f} GiB"
    osrel = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = next((ln.split("=", 1)[1].strip('"') for ln in osrel.splitlines() if ln.startswith("PRETTY_NAME=")),
                  platform.platform())
    versions: dict[str, list[str]] = {}  # version line -> binaries reporting it
    for a in dict.fromkeys(["x86_64", *arches]):
        binary = gb.arch_config(a)["qemu"] if a in gb.ARCHES else f"qemu-system-{a}"
        versions.setdefault(qemu.probe(binary).version_text or "not found", []).append(binary)
    rev = sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if rev and sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]):
        rev += " (with uncommitted changes)"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cpus": sh(["nproc"]) or str(os.cpu_count()),
        "memory": mem,
        "os": pretty,
        "kernel": platform.release(),
        "qemu": "; ".join(f"{v} ({', '.join(bs)})" for v, bs in versions.items()),
        "memtap": memtap.__version__,
        "revision": rev or "unknown",
    }


def command_line() -> str:
    """The command as one would type it from the repo root (relative paths when inside the repo)."""

    def rel(p: str) -> str:
        try:
            return str(Path(p).absolute().relative_to(REPO))
        except ValueError:
            return p

    return shlex.join([rel(sys.executable), rel(sys.argv[0]), *sys.argv[1:]])


def fmt_count(n: int | float | None) -> str:
    if n is None:
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n:.0f}"


def render(cells: dict[tuple[str, str, str], Cell], arches: list[str], workloads: list[str], modes: list[str],
           info: dict[str, str], reps: int, smoke: bool,
           profiles: dict[tuple[str, str], list[tuple[float, str, str]]] | None = None) -> str:
    """The whole markdown report (also what is printed)."""
    L: list[str] = []
    L.append("# memtap benchmark results")
    L.append("")
    if smoke:
        L.append("**SMOKE RUN ONLY (a subset or fewer than 5 repetitions): not the real benchmark numbers.**")
        L.append("")
    L.append(f"- date: {info['date']}")
    L.append(f"- machine: {info['cpu']}, {info['cpus']} CPUs, {info['memory']} RAM")
    L.append(f"- OS: {info['os']} (kernel {info['kernel']})")
    L.append(f"- QEMU: {info['qemu']}")
    L.append(f"- memtap: {info['memtap']}, source revision {info['revision']}")
    L.append(f"- command: `{info['command']}`")
    L.append(f"- repetitions: {reps} per workload and mode, interleaved; median wall time of the whole QEMU run "
             "(guest boot to exit, whole program traced, no --start-on-marker)")
    L.append("")
    L.append("Modes: " + "; ".join(f"`{m}` = {MODE_HELP[m]}" for m in modes) + ".")
    L.append("")
    traced = [m for m in modes if m != "plain"]
    for a in arches:
        L.append(f"## {a}")
        L.append("")
        L.append("Median wall time and slowdown versus plain:")
        L.append("")
        L.append("| workload | " + " | ".join(modes) + " |")
        L.append("|---|" + "---:|" * len(modes))
        for w in workloads:
            row = [w]
            plain = cells.get((a, w, "plain"))
            for m in modes:
                c = cells.get((a, w, m))
                if c is None or not c.times:
                    row.append("–")
                elif m == "plain" or plain is None:
                    row.append(f"{c.median:.3f} s")
                else:
                    row.append(f"{c.median:.3f} s, **{c.median / plain.median:.2f}x**")
            L.append("| " + " | ".join(row) + " |")
        row = ["geomean"]
        for m in modes:
            g = geomean(slowdowns(cells, m, [a])) if m != "plain" else None
            row.append(f"**{g:.2f}x**" if g else "–")
        L.append("| " + " | ".join(row) + " |")
        L.append("")
        if traced:
            L.append("Records (from the trace's END chunk), traced records per second of wall time, "
                     "bytes per record in the file:")
            L.append("")
            L.append("| workload | " + " | ".join(traced) + " |")
            L.append("|---|" + "---:|" * len(traced))
            for w in workloads:
                row = [w]
                for m in traced:
                    c = cells.get((a, w, m))
                    if c is None or not c.times or not c.total_records:
                        row.append("–")
                        continue
                    s = f"{fmt_count(c.total_records)} rec, {fmt_count(rate(c))}/s"
                    if c.file_bytes:
                        s += f", {statistics.median(c.file_bytes) / c.total_records:.3g} B/rec"
                    if client_rate(c):
                        s += f", client keeps up with {fmt_count(client_rate(c))}/s"
                    row.append(s)
                L.append("| " + " | ".join(row) + " |")
            L.append("")
        pairs = [(m, o) for m, o in FLOOR_PAIRS if m in modes and o in modes]
        if pairs:
            L.append("Each mode against its floor (median time / the floor's median time, same run):")
            L.append("")
            L.append("| workload | " + " | ".join(f"{m} / {o}" for m, o in pairs) + " |")
            L.append("|---|" + "---:|" * len(pairs))
            for w in workloads:
                row = [w]
                for m, o in pairs:
                    c, f = cells.get((a, w, m)), cells.get((a, w, o))
                    row.append(f"{c.median / f.median:.2f}x" if c and f and c.times and f.times else "–")
                L.append("| " + " | ".join(row) + " |")
            L.append("")
    if traced:
        L.append("## Geometric mean of the slowdown")
        L.append("")
        L.append("| mode | " + " | ".join(arches) + " | all |")
        L.append("|---|" + "---:|" * (len(arches) + 1))
        for m in traced:
            vals = [geomean(slowdowns(cells, m, [a])) for a in arches] + [geomean(slowdowns(cells, m, arches))]
            L.append(f"| {m} | " + " | ".join(f"{v:.2f}x" if v else "–" for v in vals) + " |")
        L.append("")
    for (a, w), rows in (profiles or {}).items():
        L.append(f"## Profile: {a} {w}, file-full")
        L.append("")
        L.append("`perf record -e cpu-clock` of one `memtap record -o T` run (QEMU's threads and the plugin's "
                 "sink thread; symbols of 0.5% of the samples or more):")
        L.append("")
        L.append("| samples | object | symbol |")
        L.append("|---:|---|---|")
        for pct, dso, sym in rows:
            L.append(f"| {pct:.1f}% | {dso} | `{sym}` |")
        L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|:-:|")
    for t in TARGETS:
        measured, ok = check_target(t, cells, arches)
        L.append(f"| {t.label} | {measured} | {ok} |")
    L.append("")
    return "\n".join(L)


def ratios(cells: dict[tuple[str, str, str], Cell], mode: str, other: str) -> list[tuple[str, float]]:
    """("arch/workload", median(mode) / median(other)) wherever both were measured."""
    out = []
    for (a, w, m), c in cells.items():
        o = cells.get((a, w, other))
        if m == mode and c.times and o is not None and o.times:
            out.append((f"{a}/{w}", c.median / o.median))
    return out


def check_target(t: Target, cells: dict[tuple[str, str, str], Cell], arches: list[str]) -> tuple[str, str]:
    """(what was measured, ✓/✗/– when not measured) for one target."""
    if t.kind == "ratio_max":
        rs = ratios(cells, t.mode, t.other)
        if not rs:
            return "not measured", "–"
        worst_k, worst = max(rs, key=lambda kr: kr[1])
        met = sum(r <= t.value for _, r in rs)
        return f"highest {worst:.2f}x ({worst_k}); met on {met} of {len(rs)}", "✓" if met == len(rs) else "✗"
    if t.kind in ("geomean_max", "geomean_vs"):
        g = geomean(slowdowns(cells, t.mode, arches))
        limit = geomean(slowdowns(cells, t.other, arches)) if t.kind == "geomean_vs" else t.value
        if g is None or limit is None:
            return "not measured", "–"
        versus = f" vs {limit:.2f}x" if t.kind == "geomean_vs" else ""
        return f"{g:.2f}x{versus} (all arches)", "✓" if g <= limit else "✗"
    of = client_rate if t.kind == "client_rate_min" else rate
    rates = [(f"{a}/{w}", of(c)) for (a, w, m), c in cells.items() if m == t.mode and c.times]
    rates = [(k, r) for k, r in rates if r is not None]
    if not rates:
        return "not measured", "–"
    worst_k, worst = min(rates, key=lambda kr: kr[1])
    return f"lowest {fmt_count(worst)}/s ({worst_k})", "✓" if worst >= t.value else "✗"


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None, gb: ModuleType) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time guest workloads under plain QEMU and under memtap (see bench/README.md).")
    p.add_argument("--arch", action="append", choices=list(gb.ARCHES),
                   help=f"guest architecture; repeatable (default: {' '.join(DEFAULT_ARCHES)})")
    p.add_argument("--workload", action="append", choices=list(WORKLOADS),
                   help="workload program; repeatable (default: all)")
    p.add_argument("--mode", action="append", choices=list(MODES),
                   help="mode; repeatable (default: all; plain is always added, slowdowns need it)")
    p.add_argument("--reps", type=int, default=5, help="repetitions per workload and mode (default: 5)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md",
                   help="markdown report (default: bench/RESULTS.md); '-' writes none")
    p.add_argument("--json", type=Path, metavar="FILE", help="also dump the raw measurements as JSON")
    p.add_argument("--profile", default="dense", metavar="WORKLOAD",
                   help="profile one full-trace run of this workload per arch with perf (default: dense; 'none' "
                        "skips it; needs perf)")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    gb = load_guest_builder()
    args = parse_args(argv, gb)
    arches = list(dict.fromkeys(args.arch or DEFAULT_ARCHES))
    workloads = list(dict.fromkeys(args.workload or WORKLOADS))
    modes = [m for m in MODES if m == "plain" or m in (args.mode or MODES)]
    smoke = args.reps < 5 or arches != list(DEFAULT_ARCHES) or workloads != list(WORKLOADS) or modes != list(MODES)

    for a in arches:  # fail early, before building, if an emulator cannot run the plugin
        qemu.require(gb.arch_config(a)["qemu"])
    qemu.plugin_path()
    print(f"building {', '.join(workloads)} for {', '.join(arches)} ...", file=sys.stderr)
    elfs = gb.build(arches=arches, programs=workloads)

    out_root = HERE / "out"  # gitignored; on the repo's disk, as traces can be GBs
    out_root.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-", dir=out_root))
    cells: dict[tuple[str, str, str], Cell] = {}
    try:
        for a in arches:
            for w in workloads:
                cmd = gb.qemu_command(a, elfs[a][w], smp=1)
                cmd[0] = qemu.require(cmd[0]).path or cmd[0]  # the same resolved binary for every mode
                expected: str | None = None
                for rep in range(args.reps):
                    for m in modes:
                        c = cells.setdefault((a, w, m), Cell(a, w, m))
                        secs, line, records, size, client_cpu = run_once(cmd, m, w, tmp)
                        if expected is None:
                            expected = line
                        elif line != expected:
                            raise RuntimeError(f"{a} {w} {m}: guest printed {line!r}, plain printed {expected!r}")
                        c.times.append(secs)
                        if client_cpu is not None:
                            c.client_cpu.append(client_cpu)
                        if records is not None:
                            if c.records is not None and c.records != records:
                                print(f"note: {a} {w} {m}: record counts differ between runs "
                                      f"({c.records} vs {records})", file=sys.stderr)
                            c.records = records
                            c.file_bytes.append(size)
                        extra = f"  {fmt_count(sum(records.values()))} rec" if records else ""
                        print(f"{a:8} {w:9} {m:10} rep {rep + 1}/{args.reps}: {secs:7.3f} s{extra}",
                              file=sys.stderr)
        for a in arches:  # null-full drops its records: take the counts of the identical file-full run
            for w in workloads:
                nf, ff = cells.get((a, w, "null-full")), cells.get((a, w, "file-full"))
                if nf is not None and ff is not None and ff.records:
                    nf.records, nf.records_from = dict(ff.records), "file-full"
        profiles = {}
        if args.profile in workloads and shutil.which("perf"):
            for a in arches:
                cmd = gb.qemu_command(a, elfs[a][args.profile], smp=1)
                print(f"{a:8} {args.profile:9} profiling file-full with perf", file=sys.stderr)
                profiles[(a, args.profile)] = profile(cmd, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    info = machine_info(arches, gb)
    info["command"] = command_line()
    report = render(cells, arches, workloads, modes, info, args.reps, smoke, profiles)
    print(report)
    if str(args.out) != "-":
        args.out.write_text(report)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        raw = {"info": info, "reps": args.reps, "cells": [asdict(c) | {"median": c.median} for c in cells.values()]}
        args.json.write_text(json.dumps(raw, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
