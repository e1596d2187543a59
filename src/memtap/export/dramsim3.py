"""DRAMsim3's trace (``dramsim3main CONFIG -t TRACE``): ``ADDRESS READ|WRITE CYCLE`` per line, the address in
0x hex and the cycle in decimal; DRAMsim3 issues each request once its cycle is reached. The cycle is the
vCPU's instruction count (``--time icount``, one instruction per cycle) or the record's global position."""

from __future__ import annotations

import numpy as np

from memtap.export import native
from memtap.export.stream import Drops, Options, Source, Warn, columns_for, write_batches

NAME = "dramsim3"
SUMMARY = "DRAMsim3 'addr READ|WRITE cycle' lines"
_LINE = 2 + 16 + 7 + 20 + 1


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the bytes written."""
    lib = native.lib()
    names = columns_for(opts, "kind", "size", "flags", "value")

    def encode(batch: native.Batch, buf: np.ndarray, drops: Drops) -> int:
        return lib.mx_dramsim3(batch.ref, buf.ctypes.data, drops.ptr)

    written, drops = write_batches(source, out, names, opts, 64, _LINE, encode)
    drops.report(NAME, warn, {"cmo": "cache operations other than zeroing and prefetches (no memory request)"})
    return written
