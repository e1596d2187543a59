"""gem5's packet trace, read by its TrafficGen's TRACE state: the magic ``gem5``, a PacketHeader, then one
Packet (tick, command, address, size, request flags, PC) per read or write, each a varint-length-prefixed
protobuf message (gem5_packet.proto beside this file has the schema). Ticks are picoseconds (the header's
tick_freq is 10^12, which TrafficGen requires); one unit of ``--time`` is one nanosecond."""

from __future__ import annotations

import numpy as np

from memtap.export import native
from memtap.export.stream import Drops, Options, Source, Warn, columns_for, write_batches

NAME = "gem5"
SUMMARY = "gem5 TrafficGen packet trace (protobuf, gem5 magic)"
MAGIC = b"gem5"
TICK_FREQ = 10**12
TICKS_PER_UNIT = 1000   # one --time unit (an instruction or a position) is 1 ns
_PACKET = 64


def varint(x: int) -> bytes:
    out = bytearray()
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def header(obj_id: str) -> bytes:
    """The magic and the PacketHeader message: obj_id (1), ver (2) = 0, tick_freq (3)."""
    name = obj_id.encode()
    body = b"\x0a" + varint(len(name)) + name + b"\x10\x00" + b"\x18" + varint(TICK_FREQ)
    return MAGIC + varint(len(body)) + body


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the bytes written."""
    lib = native.lib()
    names = columns_for(opts, "kind", "size", "flags", "value", "pc")

    def encode(batch: native.Batch, buf: np.ndarray, drops: Drops) -> int:
        return lib.mx_gem5(batch.ref, TICKS_PER_UNIT, buf.ctypes.data, drops.ptr)

    written, drops = write_batches(source, out, names, opts, 64, _PACKET, encode,
                                   header=header(f"memtap {source.name}"))
    drops.report(NAME, warn, {"cmo": "cache operations other than zeroing and prefetches (no memory request)"})
    return written
