"""A Parquet file writer for memtap's record columns: the C core (parquet.c) encodes and compresses each column's
data pages, on all cores at once; this module writes the dictionary pages, page headers and footer around them.

pyarrow's general-purpose writer took 100-200 ns per row for these 14 columns on one core; the work per value
here is a few shifts and stores before zstd (bench/RESULTS.md, "Exports"). The file is ordinary Parquet (format
2.11 encodings, version 1 data pages) with the Arrow schema stored as pyarrow stores it (``ARROW:schema``), so
pyarrow reads the same types back (dictionary-encoded kind and priv, unsigned integers).
"""

from __future__ import annotations

import base64
import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import zstandard

import memtap
from memtap.errors import MemtapError
from memtap.export import thrift
from memtap.export.native import lib
from memtap.trace import layout as L
from memtap.trace.arrow import FLAG_BITS, access_flags, arrow_schema, validity

DELTA, BSS, DICT, BOOL = range(4)   # parquet.h enum mx_pq_encoding
ZSTD_LEVEL = 1
PAGE_BYTES = 1 << 20                # a data page holds about this many bytes of values before compression
# parquet.thrift's enums
INT32, INT64, BOOLEAN, BYTE_ARRAY = 1, 2, 0, 6
PLAIN, RLE, DELTA_BINARY_PACKED, RLE_DICTIONARY, BYTE_STREAM_SPLIT = 0, 3, 5, 8, 9
OPTIONAL, CODEC_ZSTD, DATA_PAGE, DICTIONARY_PAGE = 1, 6, 0, 2
UINT_8, UINT_16, UINT_64, UTF8 = 11, 12, 14, 0


class PqColumn(ctypes.Structure):
    """struct mx_pq_column (parquet.h)."""

    _fields_ = [("data", ctypes.c_void_p), ("valid", ctypes.c_void_p), ("dict_index", ctypes.c_void_p),
                ("width", ctypes.c_uint8), ("encoding", ctypes.c_uint8), ("mask", ctypes.c_uint8),
                ("dict_bits", ctypes.c_uint8), ("level", ctypes.c_int32), ("page_rows", ctypes.c_uint32),
                ("stats", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 3)]


PAGE = np.dtype([("rows", "<u8"), ("nulls", "<u8"), ("raw_len", "<u8"), ("stored_len", "<u8")])


class PqResult(ctypes.Structure):
    """struct mx_pq_result (parquet.h)."""

    _fields_ = [("min", ctypes.c_uint64), ("max", ctypes.c_uint64), ("nulls", ctypes.c_uint64),
                ("pages", ctypes.c_uint32), ("error", ctypes.c_int32)]


@dataclass(frozen=True)
class Layout:
    """How one Arrow column is stored: physical type, bits of the logical unsigned integer (0: not one), encoding,
    whether its chunks carry min/max statistics."""

    physical: int
    bits: int
    encoding: int
    stats: bool = False


LAYOUT = {
    "pos": Layout(INT64, 64, DELTA, True), "icount": Layout(INT64, 64, DELTA, True),
    "vcpu": Layout(INT32, 16, DELTA, True), "kind": Layout(BYTE_ARRAY, 0, DICT),
    "vaddr": Layout(INT64, 64, BSS, True), "paddr": Layout(INT64, 64, BSS, True),
    "size": Layout(INT32, 8, DICT), "pc": Layout(INT64, 64, DELTA, True), "priv": Layout(BYTE_ARRAY, 0, DICT),
    "io": Layout(BOOLEAN, 0, BOOL), "value": Layout(INT64, 64, BSS), "value_hi": Layout(INT64, 64, BSS),
    "atomic": Layout(BOOLEAN, 0, BOOL), "exclusive": Layout(BOOLEAN, 0, BOOL),
}
_ENCODING_CODES = {DELTA: DELTA_BINARY_PACKED, BSS: BYTE_STREAM_SPLIT, DICT: RLE_DICTIONARY, BOOL: PLAIN}
_KIND_INDEX = np.arange(256, dtype=np.uint8)
_PRIV_INDEX = L.priv_index(np.arange(256, dtype=np.uint8)).astype(np.uint8)
def _plain_dictionary(name: str, present: np.ndarray) -> tuple[bytes, int]:
    """A dictionary page's PLAIN values and their count: kind and priv names, or the sizes present."""
    if name in ("kind", "priv"):
        names = L.KIND_NAMES if name == "kind" else L.PRIV_ORDER
        return b"".join(len(n).to_bytes(4, "little") + n.encode() for n in names), len(names)
    return present.astype("<i4").tobytes(), len(present)


@dataclass
class _Chunk:
    """One column chunk of a row group, encoded and ready to be written."""

    name: str
    rows: int
    dictionary: bytes | None
    dict_values: int
    body: np.ndarray
    pages: np.ndarray
    result: PqResult


def _encode(name: str, cols: dict[str, np.ndarray], buffer: np.ndarray, flags: np.ndarray | None) -> _Chunk:
    """Encode one Arrow column of a row group (called on a worker thread: the C call releases the GIL)."""
    lay = LAYOUT[name]
    c = PqColumn(level=ZSTD_LEVEL, encoding=lay.encoding, stats=lay.stats)
    keep = []
    valid = validity(name, cols)
    if valid is not None:
        keep.append(valid)
        c.valid = valid.ctypes.data
    dictionary, dict_values = None, 0
    if name in FLAG_BITS:
        data, c.mask = flags, FLAG_BITS[name]
    elif name == "value_hi" and "value_hi" not in cols:
        data = cols["flags"]   # every row null: never read
    else:
        data = cols[name]
    if lay.encoding == DICT:
        if name == "size":
            present = np.flatnonzero(np.bincount(data, minlength=256))
            index = np.zeros(256, np.uint8)
            index[present] = np.arange(len(present))
        else:
            present, index = None, _KIND_INDEX if name == "kind" else _PRIV_INDEX
        dictionary, dict_values = _plain_dictionary(name, present)
        keep.append(index)
        c.dict_index, c.dict_bits = index.ctypes.data, max(1, int(dict_values - 1).bit_length())
    data = np.ascontiguousarray(data)
    keep.append(data)
    c.data, c.width = data.ctypes.data, data.itemsize
    n = len(data)
    c.page_rows = max(1, min(n, PAGE_BYTES // (8 if lay.encoding in (DELTA, BSS) else 1)))
    core = lib()
    bound = core.mx_pq_bound(ctypes.byref(c), n)
    if len(buffer) < bound:
        buffer = np.empty(bound, np.uint8)
    pages = np.zeros((n + c.page_rows - 1) // c.page_rows, PAGE)
    res = PqResult()
    used = core.mx_pq_encode(ctypes.byref(c), n, buffer.ctypes.data, len(buffer), pages.ctypes.data, len(pages),
                             ctypes.byref(res))
    if res.error:
        raise MemtapError(f"parquet: encoding column {name} failed ({res.error})")
    return _Chunk(name, n, dictionary, dict_values, buffer[:used], pages, res)


def _schema_elements(names: list[str]) -> list[thrift.Struct]:
    out: list[thrift.Struct] = [[(4, "binary", "schema"), (5, "i32", len(names))]]
    for name in names:
        lay = LAYOUT[name]
        converted = {8: UINT_8, 16: UINT_16, 64: UINT_64}.get(lay.bits)
        logical = None
        if lay.bits:
            logical = [(10, "struct", [(1, "byte", lay.bits), (2, "bool", False)])]
        elif lay.physical == BYTE_ARRAY:
            logical, converted = [(1, "struct", [])], UTF8
        out.append([(1, "i32", lay.physical), (3, "i32", OPTIONAL), (4, "binary", name), (6, "i32", converted),
                    (10, "struct", logical)])
    return out


def _stat_bytes(lay: Layout, v: int) -> bytes:
    return v.to_bytes(8 if lay.physical == INT64 else 4, "little")


class ParquetFileWriter:
    """Writes record columns as row groups of one Parquet file: ``write(cols)`` per row group, then ``close()``."""

    def __init__(self, sink: BinaryIO, names: list[str], metadata: dict[str, str], threads: int | None = None):
        self.sink = sink
        self.names = names
        self.metadata = dict(metadata)
        schema = arrow_schema(names)
        self.metadata["ARROW:schema"] = base64.b64encode(schema.serialize().to_pybytes()).decode()
        self.row_groups: list[thrift.Struct] = []
        self.rows = 0
        self.offset = 0
        self._pool = ThreadPoolExecutor(threads or os.cpu_count() or 2)
        self._buffers = {name: np.empty(0, np.uint8) for name in names}
        self._zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._write(b"PAR1")

    def _write(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.offset += len(data)

    def _page_header(self, kind: int, raw: int, stored: int, rows: int, encoding: int) -> bytes:
        if kind == DICTIONARY_PAGE:
            detail = (7, "struct", [(1, "i32", rows), (2, "i32", PLAIN)])
        else:
            detail = (5, "struct", [(1, "i32", rows), (2, "i32", encoding), (3, "i32", RLE), (4, "i32", RLE)])
        return thrift.encode([(1, "i32", kind), (2, "i32", raw), (3, "i32", stored), detail])

    def _write_chunk(self, ch: _Chunk) -> tuple[thrift.Struct, int, int]:
        lay = LAYOUT[ch.name]
        start = self.offset
        raw_total = stored_total = 0
        dict_offset = None
        if ch.dictionary is not None:
            dict_offset = self.offset
            stored = self._zstd.compress(ch.dictionary)
            header = self._page_header(DICTIONARY_PAGE, len(ch.dictionary), len(stored), ch.dict_values, PLAIN)
            self._write(header)
            self._write(stored)
            raw_total += len(header) + len(ch.dictionary)
            stored_total += len(header) + len(stored)
        data_offset = self.offset
        pos = 0
        body = memoryview(ch.body)
        for pg in ch.pages[: ch.result.pages]:
            header = self._page_header(DATA_PAGE, int(pg["raw_len"]), int(pg["stored_len"]), int(pg["rows"]),
                                       _ENCODING_CODES[lay.encoding])
            self._write(header)
            self._write(body[pos: pos + int(pg["stored_len"])])
            pos += int(pg["stored_len"])
            raw_total += len(header) + int(pg["raw_len"])
            stored_total += len(header) + int(pg["stored_len"])
        stats = None
        if lay.stats:
            res = ch.result
            has = res.nulls < ch.rows
            stats = [(3, "i64", res.nulls), (5, "binary", _stat_bytes(lay, res.max) if has else None),
                     (6, "binary", _stat_bytes(lay, res.min) if has else None)]
        encodings = ([PLAIN] if ch.dictionary is not None else []) + [RLE, _ENCODING_CODES[lay.encoding]]
        meta = [(1, "i32", lay.physical), (2, "list:i32", sorted(set(encodings))), (3, "list:binary", [ch.name]),
                (4, "i32", CODEC_ZSTD), (5, "i64", ch.rows), (6, "i64", raw_total), (7, "i64", stored_total),
                (9, "i64", data_offset), (11, "i64", dict_offset), (12, "struct", stats)]
        return [(2, "i64", start), (3, "struct", meta)], raw_total, stored_total

    def write(self, cols: dict[str, np.ndarray]) -> int:
        """One row group of the record columns (as ``Trace.columns`` yields them); returns its rows."""
        n = len(next(iter(cols.values())))
        if not n:
            return 0
        flags = access_flags(cols) if any(name in FLAG_BITS for name in self.names) else None
        jobs = [self._pool.submit(_encode, name, cols, self._buffers[name], flags) for name in self.names]
        chunks, raw, stored, start = [], 0, 0, self.offset
        for name, job in zip(self.names, jobs, strict=True):
            ch = job.result()
            self._buffers[name] = ch.body.base if ch.body.base is not None else ch.body
            meta, r, s = self._write_chunk(ch)
            chunks.append(meta)
            raw += r
            stored += s
        self.row_groups.append([(1, "list:struct", chunks), (2, "i64", raw), (3, "i64", n), (5, "i64", start),
                                (6, "i64", stored), (7, "i16", len(self.row_groups))])
        self.rows += n
        return n

    def close(self) -> None:
        """The footer: schema, row groups, key-value metadata, column orders."""
        self._pool.shutdown()
        kv = [[(1, "binary", k), (2, "binary", v)] for k, v in self.metadata.items()]
        footer = thrift.encode([
            (1, "i32", 2), (2, "list:struct", _schema_elements(self.names)), (3, "i64", self.rows),
            (4, "list:struct", self.row_groups), (5, "list:struct", kv),
            (6, "binary", f"memtap version {memtap.__version__}"),
            (7, "list:struct", [[(1, "struct", [])] for _ in self.names])])
        self._write(footer)
        self._write(len(footer).to_bytes(4, "little"))
        self._write(b"PAR1")

    def __enter__(self) -> ParquetFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._pool.shutdown(cancel_futures=True)
