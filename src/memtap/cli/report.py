"""``memtap report``: one self-contained HTML page (and optionally its numbers as JSON) that shows a trace."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from memtap.analysis.cachesim import load_config, preset, preset_names
from memtap.analysis.symbols import default_warn, parse_elf_spec
from memtap.cli.analysis import add_elf_argument, output
from memtap.cli.selection import parse_span
from memtap.errors import UserError
from memtap.trace.reader import open_trace


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap report``."""
    p = subparsers.add_parser(
        "report", help="one self-contained HTML page that shows a trace",
        description="Write one HTML file that shows a trace and works offline (plotly.js, its data and its style are "
        "inside it): an overview; an address x time heatmap of fetches, loads and stores per region (code, data, "
        "stack, MMIO) with markers and exceptions on the time axis; the hottest pages and lines; with --elf the "
        "hottest functions and source lines and a coverage summary per file; with --cache or --config miss rates "
        "per level over time and the functions with the most misses; with several vCPUs the matrix of line "
        "transfers between them. docs/report.md describes the page.")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("-o", "--output", metavar="HTML", help="the page to write")
    p.add_argument("--json", metavar="FILE", help="also write the numbers behind every plot and table as JSON "
                   "('-' = stdout)")
    add_elf_argument(p, required=False)
    hierarchy = p.add_mutually_exclusive_group()
    hierarchy.add_argument("--cache", metavar="PRESET", help=f"simulate a shipped cache hierarchy "
                           f"({', '.join(preset_names())})")
    hierarchy.add_argument("--config", metavar="FILE", help="simulate the cache hierarchy of a TOML file "
                           "(docs/cachesim.md)")
    p.add_argument("--range", metavar="POS_LO:POS_HI", help="only records with POS_LO <= pos < POS_HI "
                   "(either end may be omitted)")
    p.add_argument("--vcpu", action="append", type=int, metavar="N", help="only this vCPU; repeatable")
    p.add_argument("--top", type=int, default=100, metavar="N", help="rows of each table (default 100)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from memtap.report import build, render
    from memtap.report.aggregate import Selection

    if not args.output and not args.json:
        raise UserError("give -o HTML, --json FILE, or both")
    if args.top < 1:
        raise UserError("--top: N must be at least 1")
    if args.vcpu and any(v < 0 for v in args.vcpu):
        raise UserError("--vcpu: N must be 0 or more")
    config = load_config(args.config) if args.config else preset(args.cache) if args.cache else None
    selection = Selection(parse_span(args.range, "--range") if args.range else None,
                          tuple(sorted(set(args.vcpu))) if args.vcpu else None)
    warn = default_warn()
    trace = open_trace(args.trace)
    if trace.truncated:
        warn(f"{trace.path} is truncated (no END chunk); the report covers its records up to the last whole chunk")
    opts = build.Options(elf=[parse_elf_spec(e) for e in args.elf or []], cache=config, selection=selection,
                         top=args.top, argv=sys.argv[1:])
    doc = build.build(trace, opts, warn)
    if args.json:
        out, close = output(args.json)
        try:
            json.dump(doc, out, indent=1)
            out.write("\n")
        finally:
            if close:
                out.close()
    if args.output:
        render.write(doc, args.output)
    return 0
