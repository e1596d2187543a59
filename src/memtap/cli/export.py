"""``memtap export``: write records to CSV, Parquet or a partitioned Parquet dataset for other tools (pandas,
DuckDB, Dask, spreadsheets)."""

from __future__ import annotations

import argparse
from typing import Any

from memtap.cli.selection import add_selection_arguments, open_selected, silence_stdout
from memtap.errors import UserError
from memtap.export.partition import PARTITION_KEYS
from memtap.export.tabular import FORMATS, export, export_partitioned, format_from_path


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap export``."""
    p = subparsers.add_parser("export", help="write records as CSV, Parquet or a partitioned Parquet dataset",
                              description="Export a trace's records as CSV (addresses in 0x hex, nulls empty) or "
                              "Parquet (unsigned integers, kind and priv dictionary-encoded, zstd, the trace's "
                              "metadata in the file's key-value metadata), or with --partition-by as a "
                              "Hive-partitioned Parquet dataset in directory OUT.")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file ('-' = stdout, CSV only), or with --partition-by a new directory")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from OUT's suffix)")
    p.add_argument("--partition-by", choices=PARTITION_KEYS,
                   help="write a Parquet dataset OUT/vcpu=N/part-0.parquet (one file per vCPU) or "
                   "OUT/chunk=N/part-0.parquet (runs of chunks in file order, N the first one's sequence number)")
    add_selection_arguments(p, default_order=None)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export; the output appears under its final name only when complete."""
    if args.partition_by:
        if args.format == "csv" or args.output == "-":
            raise UserError("--partition-by writes a Parquet dataset into a directory; give a directory with -o")
        if args.order == "pos":
            raise UserError("--partition-by keeps each vCPU's records in file order; --order pos applies to "
                            "single files")
        trace, kwargs = open_selected(args, "exporting")
        kwargs["order"] = "file"
        export_partitioned(trace, args.output, args.partition_by, **kwargs)
        return 0
    fmt = args.format or (None if args.output == "-" else format_from_path(args.output))
    if fmt is None:
        if args.output == "-":
            fmt = "csv"
        else:
            raise UserError(f"cannot tell the format of {args.output}: use --format csv or --format parquet")
    if fmt == "parquet" and args.output == "-":
        raise UserError("parquet cannot be written to stdout; give a file name with -o")
    trace, kwargs = open_selected(args, "exporting")
    kwargs["order"] = kwargs["order"] or "pos"
    try:
        export(trace, args.output, fmt, **kwargs)
    except BrokenPipeError:
        silence_stdout()
    return 0
