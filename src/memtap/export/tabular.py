"""Export records to CSV or Parquet, streaming batch by batch so memory stays constant.

Files are written under a temporary name in the destination directory and renamed only on success, so an
interrupted export never leaves a plausible-looking but incomplete file behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from memtap.errors import UserError
from memtap.trace import layout as L
from memtap.trace.reader import ARROW_COLUMNS, Trace, arrow_schema, records_to_arrow

FORMATS = ("csv", "parquet")
DEFAULT_ROW_GROUP = 1 << 20
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def format_from_path(path: str) -> str | None:
    """Guess the export format from the output file name."""
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: is a directory")
    directory = path.parent
    if not directory.is_dir():
        raise UserError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def hex_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """uint64 -> '0x...' lowercase strings without leading zeros, vectorized (no Python loop per value)."""
    n = len(values)
    be = np.ascontiguousarray(values, dtype=">u8").view(np.uint8).reshape(n, 8)
    nib = np.zeros((n, 18), np.uint8)
    nib[:, 2::2] = be >> 4
    nib[:, 3::2] = be & 15
    chars = _HEX_DIGITS[nib]
    chars[:, 0], chars[:, 1] = ord("0"), ord("x")
    digits = nib[:, 2:] != 0
    first = np.where(digits.any(axis=1), digits.argmax(axis=1), 15) + 2  # keep at least one digit
    keep = np.arange(18) >= first[:, None]
    keep[:, :2] = True
    lengths = keep.sum(axis=1, dtype=np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = chars[keep]
    arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if valid is not None and not valid.all():
        arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.large_string()))
    return arr


def csv_table(rec: np.ndarray) -> pa.Table:
    """Records as the CSV columns: addresses as hex strings; what the Arrow form leaves null is empty."""
    rb = records_to_arrow(rec)
    cols = {name: rb.column(name) for name in ARROW_COLUMNS}
    cols["vaddr"] = hex_array(rec["vaddr"], rb.column("vaddr").is_valid().to_numpy(zero_copy_only=False))
    cols["paddr"] = hex_array(rec["paddr"], (rec["flags"] & L.RF_PADDR) != 0)
    cols["pc"] = hex_array(rec["pc"])
    return pa.table(cols)


def _csv_schema() -> pa.Schema:
    base = arrow_schema()
    return pa.schema([pa.field(f.name, pa.large_string()) if f.name in ("vaddr", "paddr", "pc") else f
                      for f in base])


def _write_csv(trace: Trace, sink: Any, batch_size: int, filters: dict[str, Any]) -> int:
    rows = 0
    # Arrow quotes header names even with quoting_style="none"; write a plain header line ourselves.
    sink.write((",".join(ARROW_COLUMNS) + "\n").encode())
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with pacsv.CSVWriter(sink, _csv_schema(), write_options=opts) as w:
        for b in trace.batches(batch_size=batch_size, **filters):
            w.write_table(csv_table(b).cast(_csv_schema()))
            rows += len(b)
    return rows


def export_csv(trace: Trace, out: str | os.PathLike[str] | IO[bytes], *, batch_size: int = DEFAULT_ROW_GROUP,
               **filters: Any) -> int:
    """Write records as CSV to a path ('-' = stdout) or a binary file object; returns the row count."""
    if not isinstance(out, str | os.PathLike):
        return _write_csv(trace, out, batch_size, filters)
    if str(out) == "-":
        return _write_csv(trace, sys.stdout.buffer, batch_size, filters)
    with atomic_output(out) as tmp:
        try:
            with open(tmp, "wb") as f:
                return _write_csv(trace, f, batch_size, filters)
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def export_parquet(trace: Trace, out: str | os.PathLike[str], *, row_group_size: int = DEFAULT_ROW_GROUP,
                   compression: str = "zstd", **filters: Any) -> int:
    """Write records as Parquet (columns as ``to_arrow``), one row group per ``row_group_size`` rows."""
    if str(out) == "-":
        raise UserError("parquet cannot be written to stdout; give a file name with -o")
    rows = 0
    with atomic_output(out) as tmp:
        try:
            with pq.ParquetWriter(tmp, arrow_schema(), compression=compression) as w:
                pending: list[pa.RecordBatch] = []
                n = 0
                for b in trace.batches(batch_size=row_group_size, **filters):
                    pending.append(records_to_arrow(b))
                    n += len(b)
                    rows += len(b)
                    if n >= row_group_size:
                        w.write_table(pa.Table.from_batches(pending), row_group_size=row_group_size)
                        pending, n = [], 0
                if pending:
                    w.write_table(pa.Table.from_batches(pending), row_group_size=row_group_size)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return rows


def export(trace: Trace, out: str | os.PathLike[str], fmt: str, **kwargs: Any) -> int:
    """Dispatch to export_csv / export_parquet; returns the number of rows written."""
    if fmt == "csv":
        return export_csv(trace, out, **kwargs)
    if fmt == "parquet":
        return export_parquet(trace, out, **kwargs)
    raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
