"""`memtap record -o TRACE [options] -- QEMU_COMMAND...`: run QEMU unchanged but for the plugin, and keep a trace.

memtap's exit status is QEMU's; when QEMU succeeded but the trace is incomplete (disk full, killed), it is 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from memtap.errors import MemtapError, UserError
from memtap.record.ring_options import add_arguments as add_ring_arguments
from memtap.record.ring_options import from_args as ring_from_args
from memtap.record.runner import ADDRESS_MODES, EVENT_NAMES, RecordOptions
from memtap.record.runner import run as run_qemu


def events_arg(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in EVENT_NAMES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown event {bad[0] if bad else text!r}; choose from fetch, load, store")
    return names


def vcpus_arg(text: str) -> tuple[int, ...]:
    try:
        cpus = tuple(sorted({int(n) for n in text.split(",") if n.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of vCPU indexes: {text!r}") from None
    if not cpus or min(cpus) < 0 or max(cpus) > 63:
        raise argparse.ArgumentTypeError("vCPU indexes are 0..63")
    return cpus


def positive_int(text: str) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="run a QEMU command line and record its memory accesses",
        description=__doc__,
        usage="memtap record -o TRACE [options] -- QEMU_COMMAND...",
    )
    p.add_argument("-o", "--output", type=Path, help="trace file to write (required unless --sink null or --ring)")
    p.add_argument("--events", type=events_arg, default=EVENT_NAMES, metavar="LIST",
                   help="comma-separated subset of fetch,load,store (default: all)")
    p.add_argument("--addr", choices=ADDRESS_MODES, default="both",
                   help="which addresses data records carry (default: both); 'virtual' skips the physical lookup")
    p.add_argument("--counts", action="store_true",
                   help="counting mode: per-block execution counts and per-instruction load and store counts "
                        "of the whole run instead of ordered records (for coverage and profiles of long runs)")
    p.add_argument("--values", action="store_true",
                   help="data records carry the value loaded or stored (up to 16 bytes: the record's value, and "
                        "value_hi for the high half of a 16-byte access)")
    p.add_argument("--start-on-marker", action="store_true",
                   help="trace nothing until the guest executes a MEMTAP_START marker")
    p.add_argument("--max-insns", type=positive_int, default=0, metavar="N",
                   help="stop tracing after N traced instructions (QEMU keeps running)")
    p.add_argument("--vcpus", type=vcpus_arg, default=(), metavar="LIST",
                   help="trace only these vCPU indexes, e.g. 0,2 (default: all)")
    p.add_argument("--sink", choices=("file", "null"), default="file",
                   help="'null' records into memory and drops it: measures the tracing cost alone")
    p.add_argument("--zstd", type=int, default=3, metavar="LEVEL",
                   help="zstd level for chunks, -7..19; 0 stores them uncompressed (default: 3)")
    p.add_argument("--buffers", type=positive_int, default=0, metavar="N",
                   help="event buffers in the pool (default: 2 per vCPU + 4); a vCPU waits when all are full")
    p.add_argument("--buffer-events", type=positive_int, default=0, metavar="N",
                   help="events per buffer, i.e. per chunk (default: 65536)")
    add_ring_arguments(p)
    p.add_argument("qemu", nargs=argparse.REMAINDER, metavar="QEMU_COMMAND",
                   help="the QEMU command line, after --")
    p.set_defaults(func=run)


def summarize(path: Path, qemu_failed: bool) -> tuple[str, bool]:
    """One line on what the trace holds, and whether it is complete; checks every chunk's checksum.

    One rule for what is kept: a trace that holds no record is removed when QEMU failed (it did not start, found
    no kernel, lacked memory, ...), since it says nothing the error message does not; a successful run keeps even
    an empty trace (its guest never reached a traced region, which is worth knowing)."""
    from memtap.trace.reader import open_trace

    trace = open_trace(path)
    scan = trace.scan()
    counts_mode = trace.info.get("mode") == "counts"
    if trace.end is not None:
        end = trace.end
        made = end.get("block_entries", 0) if counts_mode else sum(end.get("records", {}).values())
    else:
        made = scan.events + scan.chunks_by_type.get("COUNTS", 0)
    if scan.chunks == 0 or (qemu_failed and made == 0):
        path.unlink()
        return f"memtap: no trace written: QEMU stopped before the guest made a record ({path} removed)", False
    if trace.truncated or not trace.end:
        return (f"memtap: {path} is truncated: its {scan.chunks} whole chunks ({scan.events} events) "
                "are readable, the rest was lost", False)
    if counts_mode:
        end = trace.end
        return (f"memtap: wrote {path}: counts of {end.get('block_entries', 0)} block entries, "
                f"{end.get('loads', 0)} loads, {end.get('stores', 0)} stores, {scan.file_bytes} bytes"), True
    records = trace.end.get("records", {})
    total = sum(records.values())
    kinds = ", ".join(f"{k} {v}" for k, v in records.items())
    per = f", {scan.file_bytes / total:.2f} bytes/record" if total else ""
    return f"memtap: wrote {path}: {total} records ({kinds}), {scan.file_bytes} bytes{per}", True


def run(args: argparse.Namespace) -> int:
    command = list(args.qemu)
    if command and command[0] == "--":
        command = command[1:]
    if args.zstd < -7 or args.zstd > 19:
        raise UserError(f"--zstd {args.zstd}: the level must be in -7..19")
    options = RecordOptions(
        out=args.output,
        events=args.events,
        addresses=args.addr,
        start_on_marker=args.start_on_marker,
        max_insns=args.max_insns,
        vcpus=args.vcpus,
        sink=args.sink if args.output is not None or args.ring is None else "null",
        zstd_level=args.zstd,
        buffers=args.buffers,
        buffer_events=args.buffer_events,
        counts=args.counts,
        values=args.values,
        ring=ring_from_args(args),
    )
    result = run_qemu(command, options)
    status = result.returncode
    if result.stopped_by is not None:
        name = signal.Signals(result.stopped_by).name
        print(f"memtap: stopped by {name}: QEMU was asked to shut down", file=sys.stderr)
    if result.killed_by is not None:
        name = signal.Signals(result.killed_by).name
        print(f"memtap: QEMU was killed by {name}", file=sys.stderr)
        status = 128 + result.killed_by
    elif status != 0:
        print(f"memtap: QEMU exited with status {status}", file=sys.stderr)
    if result.stopped_by is not None:
        status = 128 + result.stopped_by  # the shell's convention for a process that a signal ended
    if options.sink != "file" or options.out is None:
        return status
    try:
        line, complete = summarize(options.out, qemu_failed=result.returncode != 0)
    except MemtapError as exc:
        print(f"memtap: {exc}", file=sys.stderr)
        return status or 1
    print(line, file=sys.stderr)
    return status or (0 if complete else 1)
