"""``memtap export``: write records to CSV or Parquet for other tools (pandas, DuckDB, spreadsheets), or to the
trace formats of simulators and timeline viewers (memtap.export.formats)."""

from __future__ import annotations

import argparse
from typing import Any

from memtap.cli import export_formats
from memtap.cli.selection import add_selection_arguments, open_selected, silence_stdout
from memtap.errors import UserError
from memtap.export.formats import FORMATS as OTHER_FORMATS
from memtap.export.tabular import FORMATS, export, format_from_path


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap export``."""
    p = subparsers.add_parser("export", help="write records as CSV, Parquet or other tools' formats",
                              description="Export a trace's records as CSV (addresses in 0x hex, unknown paddr "
                              "empty), Parquet (addresses as uint64, unknown paddr null), or the trace formats of "
                              "uftrace, Chrome/Perfetto, ChampSim, Dinero IV, Valgrind lackey, DRAMsim3, Ramulator "
                              "and gem5 (docs/formats.md).")
    p.add_argument("trace", metavar="TRACE", nargs="?", help="trace file (or --ring NAME)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file; '-' = stdout (CSV and the text formats)")
    p.add_argument("--format", choices=(*FORMATS, *OTHER_FORMATS), help="output format (default: from OUT's "
                   "suffix); docs/formats.md describes the simulator and timeline formats")
    add_selection_arguments(p)
    export_formats.add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export; the output appears under its final name only when complete."""
    if args.format in OTHER_FORMATS:
        try:
            return export_formats.run(args, args.format)
        except BrokenPipeError:
            silence_stdout()
            return 0
    if args.trace is None:
        raise UserError("csv and parquet are written from a trace file")
    fmt = args.format or (None if args.output == "-" else format_from_path(args.output))
    if fmt is None:
        if args.output == "-":
            fmt = "csv"
        else:
            raise UserError(f"cannot tell the format of {args.output}: use --format csv or --format parquet")
    if fmt == "parquet" and args.output == "-":
        raise UserError("parquet cannot be written to stdout; give a file name with -o")
    trace, kwargs = open_selected(args, "exporting")
    try:
        export(trace, args.output, fmt, **kwargs)
    except BrokenPipeError:
        silence_stdout()
    return 0
