"""``memtap export``: write records to CSV, Parquet or a partitioned Parquet dataset for other tools (pandas,
DuckDB, Dask, spreadsheets), or to the trace formats of simulators and timeline viewers (memtap.export.formats)."""

from __future__ import annotations

import argparse
from typing import Any

from memtap.cli import export_formats
from memtap.cli.selection import add_selection_arguments, open_selected, silence_stdout
from memtap.errors import UserError
from memtap.export.formats import FORMATS as OTHER_FORMATS
from memtap.export.partition import PARTITION_KEYS
from memtap.export.tabular import FORMATS, export, export_partitioned, format_from_path


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap export``."""
    p = subparsers.add_parser("export", help="write records as CSV, Parquet or other tools' formats",
                              description="Export a trace's records as CSV (addresses in 0x hex, nulls empty), "
                              "Parquet (unsigned integers, kind and priv dictionary-encoded, zstd, the trace's "
                              "metadata in the file's key-value metadata), with --partition-by a Hive-partitioned "
                              "Parquet dataset in directory OUT, or the trace formats of uftrace, Chrome/Perfetto, "
                              "ChampSim, Dinero IV, Valgrind lackey, DRAMsim3, Ramulator and gem5 (docs/formats.md).")
    p.add_argument("trace", metavar="TRACE", nargs="?", help="trace file (or --ring NAME)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file ('-' = stdout: CSV and the text formats), or with --partition-by a new "
                   "directory")
    p.add_argument("--format", choices=(*FORMATS, *OTHER_FORMATS), help="output format (default: from OUT's "
                   "suffix); docs/formats.md describes the simulator and timeline formats")
    p.add_argument("--partition-by", choices=PARTITION_KEYS,
                   help="write a Parquet dataset OUT/vcpu=N/part-0.parquet (one file per vCPU) or "
                   "OUT/chunk=N/part-0.parquet (runs of chunks in file order, N the first one's sequence number)")
    add_selection_arguments(p, default_order=None)
    export_formats.add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export; the output appears under its final name only when complete."""
    if args.partition_by:
        return run_partitioned(args)
    args.order = args.order or "pos"
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


def run_partitioned(args: argparse.Namespace) -> int:
    """--partition-by: a directory of Parquet files, each vCPU's records in file order."""
    if args.format not in (None, "parquet") or args.output == "-":
        raise UserError("--partition-by writes a Parquet dataset into a directory; give a directory with -o")
    if args.order == "pos":
        raise UserError("--partition-by keeps each vCPU's records in file order; --order pos applies to single "
                        "files")
    if args.trace is None:
        raise UserError("a partitioned dataset is written from a trace file")
    args.order = "file"
    trace, kwargs = open_selected(args, "exporting")
    export_partitioned(trace, args.output, args.partition_by, **kwargs)
    return 0
