"""``memtap export``: write records to CSV or Parquet for other tools (pandas, DuckDB, spreadsheets)."""

from __future__ import annotations

import argparse
from typing import Any

from memtap.cli.selection import add_selection_arguments, open_selected, silence_stdout
from memtap.errors import UserError
from memtap.export.tabular import FORMATS, export, format_from_path


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap export``."""
    p = subparsers.add_parser("export", help="write records as CSV or Parquet",
                              description="Export a trace's records as CSV (addresses in 0x hex, unknown paddr "
                              "empty) or Parquet (addresses as uint64, unknown paddr null).")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file; '-' = stdout (CSV only)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from OUT's suffix)")
    add_selection_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export; the output appears under its final name only when complete."""
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
