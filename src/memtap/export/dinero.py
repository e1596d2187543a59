"""Dinero IV's extended din trace (``-informat D``, its default): ``LABEL ADDRESS SIZE`` per line, address and
size in hex, labels ``i`` (instruction fetch), ``r`` (read), ``w`` (write), ``c`` (copy back dirty lines) and
``v`` (invalidate); a ``c`` or ``v`` of size 0 is Dinero's whole-cache operation."""

from __future__ import annotations

import numpy as np

from memtap.export import native
from memtap.export.stream import Drops, Options, Source, Warn, columns_for, write_batches

NAME = "dinero"
SUMMARY = "Dinero IV extended din (i/r/w/c/v lines with sizes)"
_LINE = 2 + 16 + 1 + 16 + 1


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the bytes written."""
    lib = native.lib()
    names = columns_for(opts, "kind", "size", "flags", "value")

    def encode(batch: native.Batch, buf: np.ndarray, drops: Drops) -> int:
        return lib.mx_dinero(batch.ref, opts.line, buf.ctypes.data, drops.ptr)

    written, drops = write_batches(source, out, names, opts, 64, 2 * _LINE, encode)
    drops.report(NAME, warn, {"cmo": "cache operations Dinero has no label for (prefetch, instruction-cache "
                                     "invalidation, lock, set/way, or without an address)"})
    return written
