"""ctypes binding of the report's aggregation core (core.c, built by setup.py into libreport.so)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from memtap._native import Library
from memtap.errors import MemtapError

# Table ids of core.c and the columns of their exported rows (keys first).
PAGES, LINES, PCS, HEAT, TIME, VCPUS = TABLE_IDS = range(6)
KINDS = 16   # value slots per kind in the TIME and VCPUS tables
TABLE_COLUMNS = {
    PAGES: ("page", "fetch", "load", "store", "io"),
    LINES: ("line", "fetch", "load", "store", "readers", "writers"),
    PCS: ("pc", "executed", "loads", "stores"),
    HEAT: ("addr_bin", "time_bin", "fetch", "load", "store"),
    TIME: ("time_bin", *(f"kind{k}" for k in range(KINDS))),
    VCPUS: ("vcpu_priv", *(f"kind{k}" for k in range(KINDS)), "icount_max_plus_1", "icount_min_inverted"),
}
LINE_SHIFT = 6    # the LINES table's unit: 64-byte lines


class Columns(ctypes.Structure):
    """struct rp_cols: one pointer per column of a batch."""

    _fields_ = [(n, ctypes.c_void_p) for n in ("pos", "icount", "vaddr", "pc", "vcpu", "kind", "size", "priv",
                                                "flags")]


COLUMN_TYPES = {"pos": np.uint64, "icount": np.uint64, "vaddr": np.uint64, "pc": np.uint64, "vcpu": np.uint16,
                "kind": np.uint8, "size": np.uint8, "priv": np.uint8, "flags": np.uint8}


_P, _U64, _SZ = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t
SIGNATURES = {
    "rp_new": (_P, [_U64, _U64]),
    "rp_free": (None, [_P]),
    "rp_feed": (ctypes.c_int, [_P, ctypes.POINTER(Columns), _SZ]),
    "rp_state": (None, [_P, _P]),
    "rp_rows": (_SZ, [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
    "rp_export": (None, [_P, ctypes.c_int, _P]),
}

# The loaded core (lib()); a MemtapError when it was not built.
lib = Library(Path(__file__).with_name("libreport.so"), "the report core", SIGNATURES)


class Aggregator:
    """One report core: feed it column batches, then read its tables."""

    def __init__(self, max_bins: int, heat_cap: int) -> None:
        self._lib = lib()
        self._rp = self._lib.rp_new(max_bins, heat_cap)
        if not self._rp:
            raise MemtapError("report: out of memory")

    def feed(self, cols: dict[str, np.ndarray]) -> None:
        """Aggregate one batch (the columns of COLUMN_TYPES, all of one length)."""
        arrays = {n: np.ascontiguousarray(cols[n], t) for n, t in COLUMN_TYPES.items()}
        c = Columns(**{n: a.ctypes.data for n, a in arrays.items()})
        if self._lib.rp_feed(self._rp, ctypes.byref(c), len(arrays["pos"])):
            raise MemtapError("report: out of memory while aggregating")

    def state(self) -> dict[str, int]:
        out = np.zeros(5, np.uint64)
        self._lib.rp_state(self._rp, out.ctypes.data)
        names = ("pos_min", "pos_max", "time_shift", "addr_shift", "seen")
        return {n: int(v) for n, v in zip(names, out, strict=True)}

    def table(self, table_id: int) -> np.ndarray:
        """All rows of a table as an (n, words) uint64 array, sorted by key."""
        words = ctypes.c_int()
        n = self._lib.rp_rows(self._rp, table_id, ctypes.byref(words))
        out = np.zeros((n, words.value), np.uint64)
        if n:
            self._lib.rp_export(self._rp, table_id, out.ctypes.data)
        keys = 2 if table_id == HEAT else 1
        order = np.lexsort(tuple(out[:, k] for k in reversed(range(keys))))
        return out[order]

    def close(self) -> None:
        if self._rp:
            self._lib.rp_free(self._rp)
            self._rp = None

    def __del__(self) -> None:
        self.close()
