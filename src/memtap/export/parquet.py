"""Parquet export: one file, or a Hive-partitioned dataset (partition.py), laid out for scanning engines and
written by memtap's own writer (parquet_file.py, whose per-value work is C).

Layout choices, measured on the bench suite's traces (bench/export_bench.py, bench/RESULTS.md):
- ``kind``, ``priv`` and ``size`` dictionary-encoded (a handful of values: a few bits per row before zstd);
- ``pos``, ``icount``, ``vcpu`` and ``pc`` DELTA_BINARY_PACKED (they mostly step by small amounts: almost
  nothing per row, and cheap to encode);
- ``vaddr``, ``paddr``, ``value``, ``value_hi`` BYTE_STREAM_SPLIT (their high bytes repeat, which zstd then
  removes; plain or delta encoding made files 2x to 10x larger);
- zstd level 1 (negative levels saved little time and cost up to 50% in size); data pages of about 1 MiB of
  values; row groups of at most ``ROW_GROUP_ROWS`` rows (and at least half that, but for the last: the reader's
  batches pass as they are, without a copy), each with min/max statistics of pos, icount, vcpu, vaddr, paddr and
  pc, so engines skip row groups that a filter on those cannot match;
- the trace's metadata (file header JSON, INFO, END) and the selection exported in the key-value metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

import memtap
from memtap.errors import UserError
from memtap.export.files import atomic_output
from memtap.export.parquet_file import ParquetFileWriter
from memtap.trace import layout as L
from memtap.trace.arrow import check_columns, source_columns
from memtap.trace.reader import Trace, parse_kinds

ROW_GROUP_ROWS = 1 << 20


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


def row_groups(batches: Iterable[dict[str, np.ndarray]], rows: int) -> Iterator[dict[str, np.ndarray]]:
    """Column batches as row groups of at most ``rows`` rows and, but for the last, at least half that: a batch of
    that size is a row group as it is (the reader's batches usually are: no copy), a larger one is cut into equal
    parts, smaller ones are gathered. Holds at most one row group."""
    pending: list[dict[str, np.ndarray]] = []
    held = 0

    def cut(cols: dict[str, np.ndarray], n: int) -> Iterator[dict[str, np.ndarray]]:
        parts = -(-n // rows)
        for k in range(parts):
            lo, hi = n * k // parts, n * (k + 1) // parts
            yield {name: a[lo:hi] for name, a in cols.items()}

    for cols in batches:
        n = len(next(iter(cols.values())))
        if not pending and n >= rows // 2:
            yield from cut(cols, n)
            continue
        pending.append(cols)
        held += n
        if held >= rows // 2:
            yield from cut({name: np.concatenate([p[name] for p in pending]) for name in pending[0]}, held)
            pending, held = [], 0
    if pending:
        yield from cut({name: np.concatenate([p[name] for p in pending]) for name in pending[0]}, held)


def write_rows(w: ParquetFileWriter, trace: Trace, selection: dict[str, Any], row_group_rows: int) -> int:
    """Write the selected records as row groups of ``row_group_rows`` rows; returns the rows written."""
    batches = trace.columns(writer_sources(w, trace), batch_rows=row_group_rows, **selection)
    return sum(w.write(cols) for cols in row_groups(batches, row_group_rows))


def writer_sources(w: ParquetFileWriter, trace: Trace) -> list[str]:
    """The record columns a writer's Arrow columns are made from."""
    return source_columns(w.names, bool(trace.info.get("values")))


def export_parquet(trace: Trace, out: str | os.PathLike[str], *, row_group_size: int = ROW_GROUP_ROWS,
                   columns: Sequence[str] | None = None, **selection: Any) -> int:
    """Write the selected records to one Parquet file (columns as ``to_arrow``), in row groups of at most
    ``row_group_size`` rows; returns the row count. The file appears under its name only when complete."""
    if str(out) == "-":
        raise UserError("parquet cannot be written to stdout; give a file name with -o")
    if row_group_size < 1:
        raise UserError("row groups must hold at least one row")
    names = check_columns(columns)
    with atomic_output(out) as tmp:
        try:
            with open(tmp, "wb") as f, ParquetFileWriter(f, names, file_metadata(trace, selection)) as w:
                return write_rows(w, trace, selection, row_group_size)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
