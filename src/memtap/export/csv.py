"""CSV export: the columns of ``to_arrow`` as text, formatted by a small C core (csv.c, libexport.so).

Rules (README, docs/format.md): a header line of the column names; integers in decimal, except the addresses
vaddr, paddr and pc as 0x-prefixed lowercase hex; kind and priv by name; io, atomic and exclusive as true/false;
a null (what the Arrow form leaves null) as an empty field; nothing is quoted (no field can hold a comma).
pyarrow's CSV writer printed 2.2 M rows/s here, and the hex strings it needs 1 M rows/s on top; this core takes
about 100 ns per row on one core, and the batch's rows are split between the cores (bench/RESULTS.md). The null
rules stay in one place, memtap.trace.arrow.validity.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import numpy as np

from memtap.export.native import lib
from memtap.trace import layout as L
from memtap.trace.arrow import ARROW_COLUMNS, FLAG_BITS, access_flags, check_columns, source_columns, validity
from memtap.trace.reader import Trace

HEX_COLUMNS = ("vaddr", "paddr", "pc")
BUFFER_BYTES = 8 << 20
NAME_WIDTH = 16   # csv.h MX_NAME_WIDTH
DEC, HEX, BOOL, NAME = range(4)   # csv.h enum mx_format
THREADS = os.cpu_count() or 2


class Column(ctypes.Structure):
    """struct mx_column (csv.h)."""

    _fields_ = [("data", ctypes.c_void_p), ("valid", ctypes.c_void_p), ("names", ctypes.c_void_p),
                ("width", ctypes.c_uint8), ("format", ctypes.c_uint8), ("mask", ctypes.c_uint8),
                ("reserved", ctypes.c_uint8 * 5)]


def _name_table(name: Any) -> np.ndarray:
    """One entry per u8 code: its name, zero-padded, and the name's length in the entry's last byte."""
    table = np.zeros((256, NAME_WIDTH), np.uint8)
    for code in range(256):
        text = name(code).encode()
        table[code, : len(text)] = np.frombuffer(text, np.uint8)
        table[code, -1] = len(text)
    return table


_KINDS = _name_table(lambda k: L.KIND_NAMES[k] if k < len(L.KIND_NAMES) else str(k))
_PRIVS = _name_table(L.priv_name)


def header(names: Sequence[str] = ARROW_COLUMNS) -> bytes:
    return (",".join(names) + "\n").encode()


def _spec(cols: dict[str, np.ndarray], names: Sequence[str]) -> tuple[Any, list[np.ndarray]]:
    """The C description of the output columns, and the arrays it points into (keep them alive while used)."""
    keep: list[np.ndarray] = []
    spec = (Column * len(names))()
    flags = access_flags(cols) if any(name in FLAG_BITS for name in names) else None
    for c, name in zip(spec, names, strict=True):
        valid = validity(name, cols)
        if valid is not None:
            keep.append(valid)
            c.valid = valid.ctypes.data
        if name in FLAG_BITS:
            data, c.format, c.mask = flags, BOOL, FLAG_BITS[name]
        elif name == "value_hi" and "value_hi" not in cols:
            data, c.format = cols["flags"], DEC    # every row null: the data is never read
        elif name in ("kind", "priv"):
            data, c.format = cols[name], NAME
            c.names = (_KINDS if name == "kind" else _PRIVS).ctypes.data
        else:
            data, c.format = cols[name], HEX if name in HEX_COLUMNS else DEC
        data = np.ascontiguousarray(data)
        keep.append(data)
        c.data, c.width = data.ctypes.data, data.itemsize
    return spec, keep


def _format(spec: Any, ncols: int, lo: int, hi: int) -> list[bytes]:
    """Rows [lo, hi) as CSV text, in pieces of at most BUFFER_BYTES (runs on a worker thread: the C call
    releases the GIL)."""
    buf = np.empty(BUFFER_BYTES, np.uint8)
    rows = ctypes.c_size_t()
    out = []
    while lo < hi:
        used = lib().mx_csv(spec, ncols, lo, hi, buf.ctypes.data, len(buf), ctypes.byref(rows))
        lo += rows.value
        out.append(buf[:used].tobytes())
    return out


def csv_text(cols: dict[str, np.ndarray], names: Sequence[str] = ARROW_COLUMNS,
             pool: ThreadPoolExecutor | None = None) -> Iterator[bytes]:
    """One batch of record columns (holding ``source_columns(names)``) as CSV lines, in pieces of at most
    BUFFER_BYTES; with a thread pool, its workers format consecutive ranges of rows at the same time."""
    n = len(next(iter(cols.values())))
    spec, keep = _spec(cols, names)
    parts = 1 if pool is None else max(1, min(THREADS, n // 65536))
    bounds = [n * k // parts for k in range(parts + 1)]
    if pool is None or parts == 1:
        yield from _format(spec, len(names), 0, n)
        return
    jobs = [pool.submit(_format, spec, len(names), lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    for job in jobs:
        yield from job.result()
    del keep


def write_csv(trace: Trace, sink: IO[bytes], names: Sequence[str] | None = None, **selection: Any) -> int:
    """Write the header and the selected records' lines to a binary file object; returns the row count."""
    names = check_columns(names)
    sources = source_columns(names, bool(trace.info.get("values")))
    sink.write(header(names))
    rows = 0
    with ThreadPoolExecutor(THREADS) as pool:
        for cols in trace.columns(sources, **selection):
            for piece in csv_text(cols, names, pool):
                sink.write(piece)
            rows += len(cols[sources[0]])
    return rows
