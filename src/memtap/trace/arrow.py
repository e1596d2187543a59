"""The Arrow form of records (to_arrow, to_arrow_reader, Parquet and CSV exports), built from decoded columns.

Each Arrow column says which record columns it is made from (``SOURCES``), so a caller that wants three Arrow
columns makes the reader decode only what those three need. Nothing here loops over records in Python: null
masks become Arrow validity bitmaps with ``np.packbits``, and integer columns are handed to Arrow without a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from memtap.errors import UserError
from memtap.trace import layout as L

ARROW_COLUMNS = ("pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc", "priv", "io", "value", "value_hi",
                 "atomic", "exclusive")

# The record columns (layout.RECORD fields) each Arrow column is computed from.
SOURCES: dict[str, tuple[str, ...]] = {
    "pos": ("pos",), "icount": ("icount",), "vcpu": ("vcpu",), "kind": ("kind",),
    "vaddr": ("vaddr", "kind", "flags", "value"), "paddr": ("paddr", "flags"), "size": ("size",), "pc": ("pc",),
    "priv": ("priv",), "io": ("flags", "kind"), "value": ("value", "kind", "flags"),
    "value_hi": ("value_hi", "kind", "flags", "size"), "atomic": ("flags", "kind"), "exclusive": ("flags", "kind"),
}

_ENUM = pa.dictionary(pa.int8(), pa.string())
_KIND_DICT = pa.array(L.KIND_NAMES)
_PRIV_DICT = pa.array(L.PRIV_ORDER)
_TYPES = {"pos": pa.uint64(), "icount": pa.uint64(), "vcpu": pa.uint16(), "kind": _ENUM, "vaddr": pa.uint64(),
          "paddr": pa.uint64(), "size": pa.uint8(), "pc": pa.uint64(), "priv": _ENUM, "io": pa.bool_(),
          "value": pa.uint64(), "value_hi": pa.uint64(), "atomic": pa.bool_(), "exclusive": pa.bool_()}


def arrow_schema(names: Sequence[str] = ARROW_COLUMNS) -> pa.Schema:
    """The Arrow schema of the record columns ``names``: unsigned integers, ``kind`` and ``priv`` dictionary-encoded
    names, io/atomic/exclusive as booleans. Null: vaddr for markers and address-less cache operations and
    exceptions, paddr when unknown, value unless a marker's n, a cache operation's code, a recorded value or an
    exception's cause, value_hi unless the high half of a recorded 16-byte value."""
    return pa.schema([(n, _TYPES[n]) for n in names])


def check_columns(names: Iterable[str] | None) -> list[str]:
    """The Arrow column names asked for (all when None), in the order given; unknown names are a UserError."""
    wanted = list(ARROW_COLUMNS if names is None else names)
    for n in wanted:
        if n not in _TYPES:
            raise UserError(f"unknown column {n!r} (choose from {', '.join(ARROW_COLUMNS)})")
    if len(set(wanted)) != len(wanted):
        raise UserError("a column is asked for twice")
    return wanted


def source_columns(names: Sequence[str], values: bool = True) -> list[str]:
    """The record columns the reader must decode for these Arrow columns. Without recorded values (the trace's
    INFO ``values`` is false) value_hi is null throughout and costs no decoding."""
    out: list[str] = []
    for n in names:
        if n == "value_hi" and not values:
            continue
        out += [s for s in SOURCES[n] if s not in out]
    return out


def _bitmap(valid: np.ndarray) -> pa.Buffer | None:
    """An Arrow validity bitmap (None: every value valid)."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _plain(values: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    values = np.ascontiguousarray(values)
    bits = None if valid is None else _bitmap(valid)
    return pa.Array.from_buffers(typ, len(values), [bits, pa.py_buffer(values)])


def _bools(mask: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(np.packbits(mask, bitorder="little"))])


def _enum(indices: np.ndarray, dictionary: pa.Array) -> pa.Array:
    return pa.DictionaryArray.from_buffers(_ENUM, len(indices), [None, pa.py_buffer(indices)], dictionary)


def _no_address(kind: np.ndarray, flags: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Records whose vaddr means nothing: markers, cache operations without an address (whole-cache ones have
    none by nature) and exceptions without a from-address."""
    special = kind >= L.KIND_MARKER
    if not special.any():
        return special
    noaddr = (flags & L.RF_NOADDR) != 0
    whole = ((value >> np.uint64(4)) & np.uint64(3)) == L.CMO_WHOLE
    return (kind == L.KIND_MARKER) | ((kind == L.KIND_CMO) & (noaddr | whole)) | ((kind == L.KIND_EXCEPTION) & noaddr)


def validity(name: str, cols: dict[str, np.ndarray]) -> np.ndarray | None:
    """Which rows of Arrow column ``name`` hold a value (None: all of them), from the record columns
    ``SOURCES[name]``: the null rules of ``arrow_schema``, shared by every export."""
    if name == "vaddr":
        return ~_no_address(cols["kind"], cols["flags"], cols["value"])
    if name == "paddr":
        return (cols["flags"] & L.RF_PADDR) != 0
    if name == "value":
        kind = cols["kind"]
        return ((cols["flags"] & L.RF_VALUE) != 0) | (kind == L.KIND_MARKER) | (kind == L.KIND_CMO)
    if name == "value_hi":
        if "value_hi" not in cols:
            return np.zeros(len(cols["flags"]), bool)
        return ((cols["flags"] & L.RF_VALUE) != 0) & (cols["kind"] <= L.KIND_STORE) & (cols["size"] == 16)
    return None


FLAG_BITS = {"io": L.RF_IO, "atomic": L.RF_ATOMIC, "exclusive": L.RF_EXCLUSIVE}


def access_flags(cols: dict[str, np.ndarray]) -> np.ndarray:
    """The flags of loads and stores, 0 for other records: io, atomic and exclusive (FLAG_BITS) are theirs alone
    (an exception's RF_INTERRUPT shares atomic's bit)."""
    kind = cols["kind"]
    return np.where((kind == L.KIND_LOAD) | (kind == L.KIND_STORE), cols["flags"], np.uint8(0))


def columns_to_arrow(cols: dict[str, np.ndarray], names: Sequence[str] = ARROW_COLUMNS) -> pa.RecordBatch:
    """One batch of record columns (as ``Trace.columns`` yields them, holding ``source_columns(names)``) as an
    Arrow RecordBatch with ``arrow_schema(names)``. A value_hi whose source columns are absent is all null."""
    n = len(next(iter(cols.values())))
    flags = access_flags(cols) if any(name in FLAG_BITS for name in names) else None
    arrays = []
    for name in names:
        if name == "kind":
            arr = _enum(np.ascontiguousarray(cols["kind"]).view(np.int8), _KIND_DICT)
        elif name == "priv":
            arr = _enum(L.priv_index(cols["priv"]), _PRIV_DICT)
        elif name in FLAG_BITS:
            arr = _bools((flags & FLAG_BITS[name]) != 0)
        elif name == "value_hi" and "value_hi" not in cols:
            arr = pa.nulls(n, pa.uint64())
        else:
            arr = _plain(cols[name], _TYPES[name], validity(name, cols))
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(names))


def records_to_arrow(rec: np.ndarray, names: Sequence[str] = ARROW_COLUMNS) -> pa.RecordBatch:
    """A layout.RECORD array as an Arrow RecordBatch (see ``columns_to_arrow``)."""
    return columns_to_arrow({n: np.ascontiguousarray(rec[n]) for n in source_columns(names)}, names)


def arrow_batches(trace: Any, columns: Iterable[str] | None = None, **selection: Any) -> Iterator[pa.RecordBatch]:
    """The selected records of ``trace`` as Arrow RecordBatches of the Arrow ``columns`` asked for (default all),
    decoding only the record columns those need. ``selection``: ``Trace.columns``' keywords."""
    names = check_columns(columns)
    sources = source_columns(names, bool(trace.info.get("values")))
    for cols in trace.columns(sources, **selection):
        yield columns_to_arrow(cols, names)


def record_batch_reader(trace: Any, columns: Iterable[str] | None = None, **selection: Any) -> pa.RecordBatchReader:
    """A streaming pyarrow.RecordBatchReader over the selection, which DuckDB, Polars and Arrow consume lazily."""
    names = check_columns(columns)
    return pa.RecordBatchReader.from_batches(arrow_schema(names), arrow_batches(trace, names, **selection))
