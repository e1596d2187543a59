"""ctypes binding of the sharing core (core.c, built by setup.py into libsharing.so).

The core keeps its state between calls, so an analysis streams a trace through it batch by batch; counter
names come from the library itself, so Python and C cannot disagree on them.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from memtap._native import Library, ptr
from memtap.errors import MemtapError, UserError

MAX_VCPUS = 64  # SH_MAX_VCPUS
RUN_SMALL = 65536  # SH_RUN_SMALL

# struct sh_detail and struct sh_row (core.h).
DETAIL = np.dtype({"names": ["line", "vline", "transfers", "run", "last_vcpu", "flags", "aliased"],
                   "formats": ["<u8", "<u8", "<u8", "<u8", "<u2", "u1", "u1"],
                   "offsets": [0, 8, 16, 24, 32, 34, 35], "itemsize": 40})
ROW = np.dtype({"names": ["pc", "count", "detail", "sharer", "vcpu", "offset", "len", "store"],
                "formats": ["<u8", "<u8", "<u4", "<u4", "<u2", "<u2", "u1", "u1"],
                "offsets": [0, 8, 16, 20, 24, 26, 28, 29], "itemsize": 32})
MULTI_VCPU, MULTI_SHARER, WRITTEN = 0x01, 0x02, 0x04

_P = ctypes.c_void_p
_U64P = ctypes.POINTER(ctypes.c_uint64)
SIGNATURES = {
    "sh_new": (_P, [ctypes.c_uint]),
    "sh_free": (None, [_P]),
    "sh_pass1": (ctypes.c_int, [_P, ctypes.c_size_t, _P, _P, _P, _P, _P, _P, ctypes.c_int, _P,
                                ctypes.POINTER(ctypes.c_uint32)]),
    "sh_pass2": (ctypes.c_int, [_P, ctypes.c_size_t, _P, _P, _P, _P, _P, _P, _P, _P, ctypes.c_int]),
    "sh_close_runs": (ctypes.c_int, [_P]),
    "sh_counters": (_U64P, [_P]),
    "sh_counter_names": (ctypes.c_char_p, []),
    "sh_matrix": (_U64P, [_P]),
    "sh_line_counts": (None, [_P, _U64P]),
    "sh_details": (ctypes.c_size_t, [_P, ctypes.POINTER(_P)]),
    "sh_sharers": (ctypes.c_size_t, [_P, ctypes.POINTER(_P)]),
    "sh_rows": (ctypes.c_size_t, [_P, _P, ctypes.c_size_t]),
    "sh_runs": (None, [_P, ctypes.c_int, ctypes.POINTER(_P), ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t)]),
}

# The loaded core (lib()); a MemtapError when it was not built.
lib = Library(Path(__file__).with_name("libsharing.so"), "the sharing analysis core", SIGNATURES)


def _column(cols: dict[str, np.ndarray], name: str, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(cols[name], dtype)


class Core:
    """One analysis: pass1() every batch, then pass2() every batch again in the same order, then close()."""

    def __init__(self, line_shift: int) -> None:
        self._s = lib().sh_new(line_shift)
        if not self._s:
            raise MemtapError(f"sharing core: cannot start (line shift {line_shift}, or out of memory)")

    def __del__(self) -> None:
        s, self._s = getattr(self, "_s", None), None
        if s:
            lib().sh_free(s)

    def _check(self, rc: int, bad: int = 0) -> None:
        if rc == -1:
            raise MemtapError("sharing core: out of memory")
        if rc == -2:
            raise UserError(f"vCPU {bad}: the sharing analysis models vCPUs 0..{MAX_VCPUS - 1}")

    def pass1(self, cols: dict[str, np.ndarray], key: str, sharer: str | None, use_paddr: bool,
              moved: bool = False) -> np.ndarray | None:
        """Count, hold and move lines; returns the per-record movement flags when ``moved``."""
        n = len(cols["kind"])
        arrays = (_column(cols, "vcpu", "<u2"), _column(cols, "kind", "u1"), _column(cols, key, "<u8"),
                  _column(cols, "size", "u1"), _column(cols, "flags", "u1"),
                  None if sharer is None else _column(cols, sharer, "<u8"))
        out = np.zeros(n, np.uint8) if moved else None
        bad = ctypes.c_uint32(0)
        rc = lib().sh_pass1(self._s, n, *(ptr(a) for a in arrays), int(use_paddr), ptr(out), ctypes.byref(bad))
        self._check(rc, bad.value)
        return None if out is None else out.astype(bool)

    def pass2(self, cols: dict[str, np.ndarray], key: str, sharer: str | None, use_paddr: bool) -> None:
        """Per-offset rows and runs of the lines pass 1 found shared."""
        n = len(cols["kind"])
        arrays = (_column(cols, "vcpu", "<u2"), _column(cols, "kind", "u1"), _column(cols, key, "<u8"),
                  _column(cols, "vaddr", "<u8") if "vaddr" in cols else None,
                  _column(cols, "size", "u1"), _column(cols, "flags", "u1"),
                  None if sharer is None else _column(cols, sharer, "<u8"),
                  _column(cols, "pc", "<u8") if "pc" in cols else None)
        self._check(lib().sh_pass2(self._s, n, *(ptr(a) for a in arrays), int(use_paddr)))

    def close(self) -> None:
        self._check(lib().sh_close_runs(self._s))

    def counters(self) -> dict[str, int]:
        names = lib().sh_counter_names().decode().split(",")
        values = lib().sh_counters(self._s)
        return {name: int(values[i]) for i, name in enumerate(names)}

    def matrix(self) -> np.ndarray:
        """Transfers [from vCPU][to vCPU], MAX_VCPUS x MAX_VCPUS (pass 1)."""
        values = lib().sh_matrix(self._s)
        return np.ctypeslib.as_array(values, (MAX_VCPUS, MAX_VCPUS)).copy()

    def line_counts(self) -> tuple[int, int, int]:
        """(lines, lines with more than one vCPU, lines with more than one sharer)."""
        out = (ctypes.c_uint64 * 3)()
        lib().sh_line_counts(self._s, out)
        return int(out[0]), int(out[1]), int(out[2])

    def details(self) -> np.ndarray:
        """A copy of the DETAIL entries, indexed as rows' ``detail``."""
        p = _P()
        n = lib().sh_details(self._s, ctypes.byref(p))
        return _copy(p, n, DETAIL)

    def sharers(self) -> np.ndarray:
        """Sharer ids by dense index (empty when the vCPU is the sharer)."""
        p = _P()
        n = lib().sh_sharers(self._s, ctypes.byref(p))
        return _copy(p, n, np.dtype("<u8"))

    def rows(self) -> np.ndarray:
        n = lib().sh_rows(self._s, None, 0)
        out = np.zeros(n, ROW)
        lib().sh_rows(self._s, ptr(out), n)
        return out

    def runs(self, which: int) -> np.ndarray:
        """Run lengths as (length, how many runs) rows, length ascending: 0 over all data accesses, 1 per line."""
        small, big, nbig = _P(), _P(), ctypes.c_size_t()
        lib().sh_runs(self._s, which, ctypes.byref(small), ctypes.byref(big), ctypes.byref(nbig))
        counts = _copy(small, RUN_SMALL, np.dtype("<u8"))
        lengths = np.flatnonzero(counts).astype(np.uint64)
        big_lengths, big_counts = np.unique(_copy(big, nbig.value, np.dtype("<u8")), return_counts=True)
        return np.concatenate([np.stack([lengths, counts[lengths.astype(np.int64)]], axis=1),
                               np.stack([big_lengths, big_counts.astype(np.uint64)], axis=1)]).reshape(-1, 2)


def _copy(p: ctypes.c_void_p, n: int, dtype: np.dtype) -> np.ndarray:
    if not n or not p.value:
        return np.zeros(0, dtype)
    buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(p.value)
    return np.frombuffer(buf, dtype, n).copy()
