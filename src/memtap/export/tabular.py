"""Export records to CSV or Parquet (csv.py, parquet.py, partition.py), streaming batch by batch so memory stays
bounded by a batch (a row group for Parquet), never by the trace.

Files are written under a temporary name in the destination directory and renamed only on success, so an
interrupted export never leaves a plausible-looking but incomplete file behind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from memtap.errors import UserError
from memtap.export.csv import write_csv
from memtap.export.files import atomic_output
from memtap.export.parquet import ROW_GROUP_ROWS, export_parquet
from memtap.export.partition import export_partitioned
from memtap.trace.reader import Trace

FORMATS = ("csv", "parquet")
DEFAULT_BATCH_ROWS = 1 << 20

__all__ = ["FORMATS", "ROW_GROUP_ROWS", "atomic_output", "export", "export_csv", "export_parquet",
           "export_partitioned", "format_from_path"]


def format_from_path(path: str) -> str | None:
    """Guess the export format from the output file name."""
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix)


def export_csv(trace: Trace, out: str | os.PathLike[str] | IO[bytes], *, batch_size: int = DEFAULT_BATCH_ROWS,
               columns: Sequence[str] | None = None, **selection: Any) -> int:
    """Write records as CSV to a path ('-' = stdout) or a binary file object; returns the row count."""
    selection["batch_rows"] = batch_size
    if not isinstance(out, str | os.PathLike):
        return write_csv(trace, out, columns, **selection)
    if str(out) == "-":
        return write_csv(trace, sys.stdout.buffer, columns, **selection)
    with atomic_output(out) as tmp:
        try:
            with open(tmp, "wb") as f:
                return write_csv(trace, f, columns, **selection)
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def export(trace: Trace, out: str | os.PathLike[str], fmt: str, **kwargs: Any) -> int:
    """Dispatch to export_csv / export_parquet; returns the number of rows written."""
    if fmt == "csv":
        return export_csv(trace, out, **kwargs)
    if fmt == "parquet":
        return export_parquet(trace, out, **kwargs)
    raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
