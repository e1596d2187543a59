"""A Hive-partitioned Parquet dataset (DIR/vcpu=N/part-0.parquet or DIR/chunk=N/part-0.parquet), for engines that
read a directory of files in parallel (DuckDB's read_parquet(..., hive_partitioning=true), Dask, Spark, pyarrow).

By vCPU: one file per vCPU that has selected records, without a ``vcpu`` column (the directory names it). By
chunk: consecutive EVENTS chunks (in file order) gathered into files of at least ``partition_rows`` rows; the
partition value is the sequence number of a file's first chunk, and its key-value metadata ``memtap.chunks``
says which chunks [lo, hi) it holds. Both keep each vCPU's records in program order (file order).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memtap.errors import UserError
from memtap.export.files import atomic_directory
from memtap.export.parquet import ROW_GROUP_ROWS, file_metadata, row_groups, write_rows, writer_sources
from memtap.export.parquet_file import ParquetFileWriter
from memtap.trace import layout as L
from memtap.trace.arrow import ARROW_COLUMNS
from memtap.trace.reader import Trace

PARTITION_KEYS = ("vcpu", "chunk")
PARTITION_ROWS = 1 << 24
PART_FILE = "part-0.parquet"


def _write_part(trace: Trace, directory: Path, names: Sequence[str], selection: dict[str, Any],
                metadata: dict[str, str], row_group_rows: int) -> int:
    """One partition's file; a partition without rows leaves no directory behind."""
    directory.mkdir()
    with open(directory / PART_FILE, "wb") as f, ParquetFileWriter(f, list(names), metadata) as w:
        rows = write_rows(w, trace, selection, row_group_rows)
    if not rows:
        shutil.rmtree(directory)
    return rows


def _by_vcpu(trace: Trace, root: Path, selection: dict[str, Any], row_group_rows: int) -> int:
    names = [n for n in ARROW_COLUMNS if n != "vcpu"]
    wanted = selection.pop("vcpus", None)
    wanted = None if wanted is None else {int(v) for v in ([wanted] if isinstance(wanted, int) else wanted)}
    rows = 0
    for v in trace.vcpus:
        if wanted is not None and v not in wanted:
            continue
        part = {**selection, "vcpus": [v]}
        rows += _write_part(trace, root / f"vcpu={v}", names, part, file_metadata(trace, part), row_group_rows)
    return rows


def _events_chunks(trace: Trace, selection: dict[str, Any]) -> list[int]:
    """Sequence numbers of the EVENTS chunks the selection can draw from, in file order."""
    vcpus = selection.get("vcpus")
    vcpus = None if vcpus is None else {int(v) for v in ([vcpus] if isinstance(vcpus, int) else vcpus)}
    lo, hi = selection.pop("chunk_range", None) or (None, None)
    return [c.seq for c in trace.chunks if c.type == L.CHUNK_EVENTS and (vcpus is None or c.vcpu in vcpus)
            and (lo is None or c.seq >= lo) and (hi is None or c.seq < hi)]


def _by_chunk(trace: Trace, root: Path, selection: dict[str, Any], row_group_rows: int,
              partition_rows: int) -> int:
    names = list(ARROW_COLUMNS)
    seqs = _events_chunks(trace, selection)
    rows = 0
    end = 0
    while end < len(seqs):
        # Chunks from seqs[end] go into one file until it holds partition_rows rows.
        lo, held = seqs[end], 0
        directory = root / f"chunk={lo}"
        directory.mkdir()
        with (open(directory / PART_FILE, "wb") as f,
              ParquetFileWriter(f, names, file_metadata(trace, selection)) as w):

            def batches() -> Iterator[dict[str, np.ndarray]]:
                nonlocal end, held
                while end < len(seqs) and held < partition_rows:
                    for cols in trace.columns(writer_sources(w, trace), chunk_range=(seqs[end], seqs[end] + 1),
                                              batch_rows=row_group_rows, **selection):
                        held += len(cols["pos"])
                        yield cols
                    end += 1

            for cols in row_groups(batches(), row_group_rows):
                w.write(cols)
            w.metadata["memtap.chunks"] = json.dumps([lo, seqs[end - 1] + 1])
        if not held:
            shutil.rmtree(directory)
        rows += held
    return rows


def export_partitioned(trace: Trace, out: str | os.PathLike[str], by: str, *, row_group_size: int = ROW_GROUP_ROWS,
                       partition_rows: int = PARTITION_ROWS, **selection: Any) -> int:
    """Write the selected records as a Hive-partitioned Parquet dataset in directory ``out``, partitioned ``by``
    "vcpu" or "chunk"; returns the row count. The directory appears only when complete."""
    if by not in PARTITION_KEYS:
        raise UserError(f"cannot partition by {by!r} (choose from {', '.join(PARTITION_KEYS)})")
    if selection.pop("order", "file") not in (None, "file"):
        raise UserError("a partitioned export keeps each vCPU's records in file order; --order pos applies to "
                        "single files")
    if row_group_size < 1 or partition_rows < 1:
        raise UserError("row groups and partitions must hold at least one row")
    with atomic_directory(out) as tmp:
        try:
            if by == "vcpu":
                return _by_vcpu(trace, tmp, selection, row_group_size)
            return _by_chunk(trace, tmp, selection, row_group_size, partition_rows)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
