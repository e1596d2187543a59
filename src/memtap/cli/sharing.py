"""``memtap sharing``: cache lines more than one vCPU (or thread) touched, false and true sharing, transfers
between cores, the variables involved, and how finely the vCPUs took turns."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from memtap.analysis.symbols import default_warn
from memtap.cli.analysis import ELF_HELP, load_symbols
from memtap.errors import UserError
from memtap.trace.reader import open_trace


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap sharing``."""
    p = subparsers.add_parser(
        "sharing", help="cache lines shared between vCPUs: false and true sharing, transfers",
        description="Every cache line more than one vCPU (or thread, where the trace knows threads) touched: its "
        "readers and writers, the bytes each wrote, the transfers between cores by mtrace's rule (a read after "
        "another core's write, a write after another core's access; caches infinite), its class (false: the "
        "writers' bytes are disjoint; true: they overlap; read: fewer than two writers) and the variables in "
        "it; per-offset rows, the shared addresses, how much mtrace's movement recording mode would keep, and "
        "how finely the trace's vCPUs took turns. docs/sharing.md has the rules.")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("--elf", action="append", metavar="FILE[@OFFSET]", help=ELF_HELP + " (names variables and code)")
    p.add_argument("--line-size", type=int, default=64, metavar="N",
                   help="line size in bytes, a power of two from 8 to 4096 (default 64; 128 for adjacent-line "
                   "prefetch pairs)")
    p.add_argument("--address", choices=("auto", "physical", "virtual"), default="auto",
                   help="key lines by physical or virtual address (default auto: physical when the trace has "
                   "physical addresses, since caches are physical)")
    p.add_argument("--sharers", choices=("auto", "thread", "vcpu"), default="auto",
                   help="who shares: threads (where the trace has a thread column) or vCPUs (default auto)")
    p.add_argument("--top", type=int, metavar="N",
                   help="only the N lines with most transfers and the N busiest shared addresses (text default "
                   "10; --json lists all unless --top is given; 0: all)")
    p.add_argument("--movement", action="store_true",
                   help="only count the records mtrace's movement recording mode would keep (one pass)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Analyse the trace in global order and print the report."""
    from memtap.analysis import sharing
    from memtap.analysis.datasyms import DataSymbols
    from memtap.analysis.symbols import parse_elf_spec

    out = sys.stdout if out is None else out
    if args.top is not None and args.top < 0:
        raise UserError("--top: N must be >= 0")
    warn = default_warn()
    trace = open_trace(args.trace)
    if trace.counts_mode:
        raise UserError(f"{trace.path} was recorded with --counts: it holds counters, not accesses")
    if trace.truncated:
        warn(f"{trace.path} is truncated (no END chunk); analysing records up to the last whole chunk")
    if args.movement:
        report = sharing.movement_report(trace, args.line_size, args.address)
        text = json.dumps(report, indent=2) if args.json else sharing.format_movement(report)
    else:
        code = load_symbols(args, trace.arch, warn) if args.elf else None
        data = DataSymbols([parse_elf_spec(e) for e in args.elf], trace.arch, warn) if args.elf else None
        try:
            top = args.top if args.top is not None else (None if args.json else 10)
            report = sharing.analyze(trace, args.line_size, args.address, args.sharers, data, code, top or None)
        finally:
            if data is not None:
                data.close()
        text = json.dumps(report, indent=2) if args.json else sharing.format_text(report)
    out.write(text + "\n")  # a reader that went away (BrokenPipeError) is handled by memtap.cli.main
    out.flush()
    return 0
