"""ctypes binding of the native core (core.c, built by setup.py into libcachesim.so).

Op codes and counter names come from the library itself, so Python and C cannot disagree on them.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import numpy as np

from memtap._native import Library
from memtap.trace import layout

REPL_CODES = {"lru": 0, "fifo": 1, "random": 2, "plru": 3}
SIDE_CODES = {"unified": 0, "instruction": 1, "data": 2}


class LevelCfg(ctypes.Structure):
    _fields_ = [("sets", ctypes.c_uint64), ("ways", ctypes.c_uint32), ("line", ctypes.c_uint32),
                ("repl", ctypes.c_uint8), ("write_back", ctypes.c_uint8), ("write_allocate", ctypes.c_uint8),
                ("inclusive", ctypes.c_uint8), ("shared", ctypes.c_uint8), ("side", ctypes.c_uint8),
                ("reserved", ctypes.c_uint8 * 2)]


class Options(ctypes.Structure):
    _fields_ = [("seed", ctypes.c_uint64), ("reset_marker", ctypes.c_int64), ("range_bits", ctypes.c_uint32),
                ("split_lines", ctypes.c_uint8), ("compat", ctypes.c_uint8), ("classify", ctypes.c_uint8),
                ("track", ctypes.c_uint8)]


# struct ms_input: the direct input of the core (synthetic ops in tests, kinds the trace does not have yet).
INPUT = np.dtype({"names": ["addr", "pc", "size", "vcpu", "op"],
                  "formats": ["<u8", "<u8", "<u4", "<u2", "u1"],
                  "offsets": [0, 8, 16, 20, 22], "itemsize": 24})

# struct ms_memop: one read or write of main memory and the index of the item that caused it.
MEMOP = np.dtype({"names": ["addr", "index", "vcpu", "write"], "formats": ["<u8", "<u8", "<u2", "u1"],
                  "offsets": [0, 8, 16, 18], "itemsize": 24})

# struct ms_columns: the record fields the core reads, in the struct's order, with the dtype each must have.
COLUMNS = {"kind": np.dtype("u1"), "vcpu": np.dtype("<u2"), "size": np.dtype("u1"), "flags": np.dtype("u1"),
           "vaddr": np.dtype("<u8"), "paddr": np.dtype("<u8"), "pc": np.dtype("<u8"), "value": np.dtype("<u8")}


class Column(ctypes.Structure):
    """struct ms_column: values ``stride`` bytes apart; data None: absent (zeros)."""

    _fields_ = [("data", ctypes.c_void_p), ("stride", ctypes.c_size_t)]


class Columns(ctypes.Structure):
    """struct ms_columns."""

    _fields_ = [(name, Column) for name in COLUMNS]


_P, _U64P = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)
SIGNATURES = {
    "ms_new": (_P, [ctypes.POINTER(LevelCfg), ctypes.c_int, ctypes.POINTER(Options)]),
    "ms_free": (None, [_P]),
    "ms_ensure_vcpus": (ctypes.c_int, [_P, ctypes.c_int]),
    "ms_run_columns": (ctypes.c_size_t, [_P, _P, ctypes.c_size_t, ctypes.c_size_t, _P, ctypes.c_int]),
    "ms_run_inputs": (ctypes.c_size_t, [_P, _P, ctypes.c_size_t]),
    "ms_counters": (_U64P, [_P, ctypes.c_int, ctypes.c_int]),
    "ms_op_counts": (_U64P, [_P, ctypes.c_int]),
    "ms_map_size": (ctypes.c_size_t, [_P, ctypes.c_int, ctypes.c_int]),
    "ms_map_export": (ctypes.c_size_t, [_P, ctypes.c_int, ctypes.c_int, _P, ctypes.c_size_t]),
    "ms_probe": (ctypes.c_int, [_P, ctypes.c_int, ctypes.c_int, ctypes.c_uint64]),
    "ms_log_enable": (None, [_P, ctypes.c_int]),
    "ms_log_size": (ctypes.c_size_t, [_P]),
    "ms_log_take": (ctypes.c_size_t, [_P, _P, ctypes.c_size_t]),
    "ms_op_names": (ctypes.c_char_p, []),
    "ms_counter_names": (ctypes.c_char_p, []),
}

# The loaded core (lib()); a MemtapError when it was not built. It reads records as columns (feed() converts any
# column to COLUMNS' dtype), so no record layout is checked.
lib = Library(Path(__file__).with_name("libcachesim.so"), "the cache simulator core", SIGNATURES)


@cache
def op_codes() -> dict[str, int]:
    """Op name -> code, from the core (none, fetch, load, store, marker, uncached, prefetch, ...)."""
    return {name: i for i, name in enumerate(lib().ms_op_names().decode().split(","))}


@cache
def counter_names() -> tuple[str, ...]:
    return tuple(lib().ms_counter_names().decode().split(","))


def kind_to_op() -> np.ndarray:
    """The record kind -> op table: the kinds layout.py defines today; any other kind is ignored."""
    ops = op_codes()
    table = np.zeros(256, np.uint8)
    for code, name in enumerate(layout.KIND_NAMES):
        table[code] = ops.get(name, ops["none"])
    return table
