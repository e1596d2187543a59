"""Ramulator 2's LoadStoreTrace: ``LD ADDRESS`` or ``ST ADDRESS`` per line (0x hex). Ramulator reads the
address as a signed 64-bit number, so addresses of 2^63 and above cannot be written."""

from __future__ import annotations

import numpy as np

from memtap.export import native
from memtap.export.stream import Drops, Options, Source, Warn, columns_for, write_batches

NAME = "ramulator"
SUMMARY = "Ramulator 2 LoadStoreTrace 'LD|ST addr' lines"
_LINE = 5 + 16 + 1


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the bytes written."""
    lib = native.lib()
    names = columns_for(opts, "kind", "size", "flags", "value")

    def encode(batch: native.Batch, buf: np.ndarray, drops: Drops) -> int:
        return lib.mx_ramulator(batch.ref, buf.ctypes.data, drops.ptr)

    written, drops = write_batches(source, out, names, opts, 63, _LINE, encode)
    drops.report(NAME, warn, {"cmo": "cache operations other than zeroing and prefetches (no memory request)",
                              "wide_addr": "records at addresses of 2^63 and above (Ramulator reads a signed "
                                           "64-bit address)"})
    return written
