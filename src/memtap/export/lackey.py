"""Valgrind lackey's memory trace (``valgrind --tool=lackey --trace-mem=yes``): ``I  addr,size`` for an
instruction, `` L``/`` S`` for a load or store, and `` M`` for an instruction's load and store of one location.
The cache-simulator exercises that read lackey's output (the CMU cache lab's csim and its kin) read it as is."""

from __future__ import annotations

import dataclasses

import numpy as np

from memtap.export import native
from memtap.export.stream import Drops, Options, Source, Warn, columns_for, write_batches

NAME = "lackey"
SUMMARY = "Valgrind lackey's I/L/S/M lines"
_LINE = 32   # longest line: " M " + 16 hex digits + "," + 3 digits + "\n"


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the bytes written."""
    opts = dataclasses.replace(opts, time="icount")   # lackey has no clock; an instruction is its icount
    lib = native.lib()
    state = native.LackeyState()
    names = columns_for(opts, "kind", "size", "flags", "pc", "vcpu")

    def encode(batch: native.Batch, buf: np.ndarray, drops: Drops) -> int:
        return lib.mx_lackey(batch.ref, state, 0, buf.ctypes.data, drops.ptr)

    def finish(drops: Drops) -> bytes:
        buf = np.empty(64, np.uint8)
        empty = native.Batch({n: np.zeros(0, np.uint64) for n in names})
        return buf[: lib.mx_lackey(empty.ref, state, 1, buf.ctypes.data, drops.ptr)].tobytes()

    written, drops = write_batches(source, out, names, opts, 64, 2 * _LINE, encode, finish=finish)
    drops.report(NAME, warn)
    return written
