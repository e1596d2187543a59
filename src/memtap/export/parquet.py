"""Parquet export: one file, or a Hive-partitioned dataset (partition.py), laid out for scanning engines.

Layout choices, measured on the bench suite's traces (bench/export_bench.py, bench/RESULTS.md):
- ``kind``, ``priv`` and ``size`` dictionary-encoded (a handful of values: a few bits per row before zstd);
- ``pos`` and ``icount`` DELTA_BINARY_PACKED (they mostly count up by one: almost nothing per row);
- the 64-bit address and value columns BYTE_STREAM_SPLIT (their high bytes repeat, which zstd then removes;
  plain or delta encoding made files 2x to 10x larger);
- zstd level 1; pages limited by size (1 MiB), not by a row count, so a column of one repeated value costs
  almost nothing; row groups of ``ROW_GROUP_ROWS`` rows, each with min/max statistics of pos, icount, vcpu,
  vaddr, paddr and pc, so engines skip row groups that a filter on those cannot match;
- the trace's metadata (file header JSON, INFO, END) and the selection exported in the key-value metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import memtap
from memtap.errors import UserError
from memtap.export.files import atomic_output
from memtap.trace import layout as L
from memtap.trace.arrow import ARROW_COLUMNS, arrow_batches, arrow_schema
from memtap.trace.reader import Trace, parse_kinds

ROW_GROUP_ROWS = 1 << 20
_DICTIONARY = ("kind", "priv", "size")
_ENCODINGS = {"pos": "DELTA_BINARY_PACKED", "icount": "DELTA_BINARY_PACKED", "vaddr": "BYTE_STREAM_SPLIT",
              "paddr": "BYTE_STREAM_SPLIT", "pc": "BYTE_STREAM_SPLIT", "value": "BYTE_STREAM_SPLIT",
              "value_hi": "BYTE_STREAM_SPLIT"}
_STATISTICS = ("pos", "icount", "vcpu", "vaddr", "paddr", "pc")


def file_metadata(trace: Trace, selection: dict[str, Any]) -> dict[str, str]:
    """The key-value metadata of an exported file: where its rows came from (each value JSON)."""
    chosen = {k: v for k, v in selection.items() if v is not None}
    if "kinds" in chosen:
        chosen["kinds"] = [L.KIND_NAMES[c] for c in sorted(parse_kinds(chosen["kinds"]) or ())]
    if "vcpus" in chosen:
        chosen["vcpus"] = sorted([chosen["vcpus"]] if isinstance(chosen["vcpus"], int) else chosen["vcpus"])
    return {"memtap.version": json.dumps(memtap.__version__), "memtap.trace": json.dumps(trace.path.name),
            "memtap.meta": json.dumps(trace.meta), "memtap.info": json.dumps(trace.info),
            "memtap.end": json.dumps(trace.end), "memtap.selection": json.dumps(chosen)}


def writer(path: str | os.PathLike[str], names: Sequence[str], metadata: dict[str, str]) -> pq.ParquetWriter:
    """A ParquetWriter with memtap's layout for the Arrow columns ``names``."""
    schema = arrow_schema(names).with_metadata(metadata)
    return pq.ParquetWriter(
        path, schema, compression="zstd", compression_level=1,
        use_dictionary=[n for n in _DICTIONARY if n in names],
        column_encoding={n: e for n, e in _ENCODINGS.items() if n in names},
        write_statistics=[n for n in _STATISTICS if n in names],
        max_rows_per_page=ROW_GROUP_ROWS)


def write_batches(w: pq.ParquetWriter, batches: Iterable[pa.RecordBatch], row_group_rows: int) -> int:
    """Write batches as row groups of ``row_group_rows`` rows (the last one shorter); returns the rows written.
    At most one row group is held in memory."""
    pending: list[pa.RecordBatch] = []
    held = rows = 0
    for b in batches:
        while len(b):
            take = b.slice(0, row_group_rows - held)
            pending.append(take)
            held += len(take)
            b = b.slice(len(take))
            if held == row_group_rows:
                w.write_table(pa.Table.from_batches(pending), row_group_size=row_group_rows)
                rows += held
                pending, held = [], 0
    if pending:
        w.write_table(pa.Table.from_batches(pending), row_group_size=row_group_rows)
        rows += held
    return rows


def selection_batches(trace: Trace, names: Sequence[str], selection: dict[str, Any],
                      row_group_rows: int) -> Iterator[pa.RecordBatch]:
    """The selected records as Arrow batches of the columns ``names``, read a row group at a time."""
    return arrow_batches(trace, names, batch_rows=row_group_rows, **selection)


def export_parquet(trace: Trace, out: str | os.PathLike[str], *, row_group_size: int = ROW_GROUP_ROWS,
                   columns: Sequence[str] | None = None, **selection: Any) -> int:
    """Write the selected records to one Parquet file (columns as ``to_arrow``); returns the row count. The file
    appears under its name only when complete."""
    if str(out) == "-":
        raise UserError("parquet cannot be written to stdout; give a file name with -o")
    if row_group_size < 1:
        raise UserError("row groups must hold at least one row")
    names = list(ARROW_COLUMNS if columns is None else columns)
    with atomic_output(out) as tmp:
        try:
            with writer(tmp, names, file_metadata(trace, selection)) as w:
                return write_batches(w, selection_batches(trace, names, selection, row_group_size), row_group_size)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
