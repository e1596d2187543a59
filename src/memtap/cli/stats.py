"""``memtap stats``: summary counts and address footprint of a trace."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from memtap.analysis.summary import compute_stats, format_stats
from memtap.trace import counters
from memtap.trace.reader import open_trace


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap stats``."""
    p = subparsers.add_parser("stats", help="summary counts and footprint",
                              description="Count records by kind, vCPU, size and privilege level, and measure "
                              "the data address footprint.")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Compute the statistics in one streaming pass and print them."""
    out = sys.stdout if out is None else out
    trace = open_trace(args.trace)
    if trace.counts_mode:
        s, fmt = counters.summary(trace), counters.format_summary
    else:
        s, fmt = compute_stats(trace), format_stats
    try:
        out.write((json.dumps(s, indent=2) if args.json else fmt(s)) + "\n")
        out.flush()
    except BrokenPipeError:
        pass
    return 0
