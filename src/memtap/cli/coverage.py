"""``memtap coverage``: line and function coverage of one or more traces, as lcov or a gcov-like listing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from memtap.analysis.coverage import coverage, write_gcov_text, write_lcov
from memtap.analysis.symbols import default_warn
from memtap.cli.analysis import add_elf_argument, load_symbols, merged_counts, output

WRITERS = {"lcov": write_lcov, "gcov-text": write_gcov_text}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap coverage``."""
    p = subparsers.add_parser(
        "coverage", help="line and function coverage (lcov, gcov-like text)",
        description="Line and function coverage of the guest code the ELF files describe, from the instruction "
        "fetches of one or more traces (their counts add up). A line's count is the highest execution count of "
        "its instructions; a function's, the executions of its entry instruction. Prints a one-line summary on "
        "stderr.")
    p.add_argument("traces", nargs="+", metavar="TRACE", help="trace files (recorded with fetch records)")
    add_elf_argument(p, required=True)
    p.add_argument("--format", choices=sorted(WRITERS), default="lcov",
                   help="lcov: a tracefile for genhtml (default); gcov-text: annotated source listings")
    p.add_argument("-o", "--output", default="-", metavar="OUT", help="output file ('-' = stdout, the default)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    warn = default_warn()
    counts, arch, traces = merged_counts(args.traces, need_fetches=True, warn=warn)
    symbols = load_symbols(args, arch, warn)
    symbols.note_resolved(counts.pc)
    symbols.warn_unresolved()
    report = coverage(counts, symbols, runs=len(traces))
    out, close = output(args.output)
    try:
        WRITERS[args.format](report, out, warn)
    finally:
        if close:
            out.close()
    lines, hit, fns, fhit = report.totals()
    print(f"memtap: coverage of {len(traces)} trace(s): lines {hit} of {lines}{_share(hit, lines)}, "
          f"functions {fhit} of {fns}{_share(fhit, fns)}", file=sys.stderr)
    return 0


def _share(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.1f}%)" if whole else ""
