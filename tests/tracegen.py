"""Build synthetic memtap trace files in pure Python, for tests that must not depend on QEMU.

The writer follows include/memtap/trace.h byte for byte (via memtap.layout) and can deliberately damage what it
writes (bad crc, bad magic, undecodable zstd, a chunk cut short) so the reader's error paths can be tested.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from memtap.trace import layout as L

DEFAULT_INFO = {
    "target": "riscv64",
    "smp_vcpus": 1,
    "api_version": 4,
    "events": ["fetch", "load", "store"],
    "addresses": "both",
    "fetch_paddr": False,
}
DEFAULT_META = {"memtap_version": "0.0.0-test", "qemu_version": "9.0.0", "qemu_command": ["qemu-riscv64"],
                "start_time": "2024-01-01T00:00:00Z", "options": {}}


@dataclass(frozen=True)
class Insn:
    """One instruction-table entry; ``id`` is assigned by the writer unless given."""

    vaddr: int
    size: int = 4
    priv: int = L.PRIV_USER
    flags: int = 0
    id: int | None = None
    cmo: int = 0      # with flags INSN_CMO: operation | granularity << 4 | level << 6


def exec_ev(insn: int, count: int, pos: int, icount: int) -> tuple:
    """EXEC event: ``count`` instructions from id ``insn`` fetched, first at ``pos``/``icount``."""
    return (0, 0, icount, pos, insn, L.EV_EXEC, 0, count, 0, 0)


def data_ev(insn: int, vaddr: int, pos: int, icount: int, *, size: int = 8, store: bool = False,
            paddr: int | None = None, io: bool = False, signed: bool = False, big_endian: bool = False,
            fetches: int = 0) -> tuple:
    """DATA event: one load or store of ``size`` bytes (a power of two) by instruction ``insn`` at ``pos``, after
    ``fetches`` fetches that end with that instruction's (format version 2)."""
    flags = size.bit_length() - 1
    assert 1 << flags == size, "size must be a power of two"
    flags |= (L.EVF_STORE if store else 0) | (L.EVF_IO if io else 0) | (L.EVF_SIGNED if signed else 0)
    flags |= (L.EVF_BIG_ENDIAN if big_endian else 0) | (L.EVF_PADDR if paddr is not None else 0)
    return (vaddr, paddr or 0, icount, pos, insn, L.EV_DATA, flags, 1 + fetches, 0, 0)


def cmo_ev(insn: int, vaddr: int | None, pos: int, icount: int) -> tuple:
    """CMO event: the cache operation of instruction ``insn`` (its INSN_CMO entry says which) at ``vaddr``
    (None: an address the plugin could not compute)."""
    return (vaddr or 0, 0, icount, pos, insn, L.EV_CMO, 0 if vaddr is None else 1, 1, 0, 0)


def mark_ev(insn: int, value: int, pos: int, icount: int) -> tuple:
    """MARK event: a MEMTAP_MARK(value) executed by instruction ``insn``."""
    return (value, 0, icount, pos, insn, L.EV_MARK, 0, 1, 0, 0)


def events_to_columns(ev: np.ndarray, values: bool = False) -> bytes:
    """The plugin's column encoding of EVENT rows (trace.h), written here from the specification rather than shared
    with the reader, so a reader bug cannot hide behind the same bug in the writer."""
    ev = np.asarray(ev, L.EVENT)
    addressed = ev["kind"] != L.EV_EXEC
    # Each difference is to the last record the previous event covered (an EXEC run: its last instruction).
    last_icount = last_pos = 0
    narrow: dict[str, list[int]] = {"icount": [], "pos": []}
    wide: dict[str, list[int]] = {"icount": [], "pos": []}
    for e in ev:
        for name, last in (("icount", last_icount), ("pos", last_pos)):
            d = (int(e[name]) - last) % (1 << 64)
            narrow[name].append(min(d, L.WIDE))
            if d >= L.WIDE:
                wide[name].append(d)
        run = int(e["count"]) - 1 if e["kind"] == L.EV_EXEC else 0
        last_icount, last_pos = int(e["icount"]) + run, int(e["pos"]) + run
    a = ev[addressed]
    vaddr = a["vaddr"].astype(np.uint64)
    parts = [ev["kind"].astype("u1"), ev["flags"].astype("u1"), ev["count"].astype("<u2"), ev["insn"].astype("<u4"),
             np.array(narrow["icount"], "<u2"), np.array(narrow["pos"], "<u2"), vaddr.astype("<u8"),
             (a["paddr"].astype(np.uint64) - vaddr).astype("<u8"),
             np.array(wide["icount"], "<u8"), np.array(wide["pos"], "<u8")]
    if values:
        sixteen = (a["kind"] == L.EV_DATA) & ((a["flags"] & L.EVF_SIZE_MASK) == 4)
        parts += [a["value"].astype("<u8"), a["value_hi"][sixteen].astype("<u8")]
    return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)


_CHUNK_OPTIONS = frozenset({"codec", "bad_crc", "bad_magic", "bad_zstd", "cut", "seq"})


def _split(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate chunk options from JSON fields."""
    return ({k: v for k, v in kw.items() if k in _CHUNK_OPTIONS},
            {k: v for k, v in kw.items() if k not in _CHUNK_OPTIONS})


class TraceWriter:
    """Append chunks to a trace file. Offsets of every chunk written are kept in ``offsets`` for assertions."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None, codec: int = L.CODEC_RAW,
                 magic: bytes = L.FILE_MAGIC, version: int = L.FORMAT_VERSION) -> None:
        self.path = Path(path)
        self.codec = codec
        self.seq = 0
        self.next_id = 0
        self.offsets: list[int] = []
        self.f = open(self.path, "wb")
        meta_bytes = json.dumps(DEFAULT_META if meta is None else meta).encode()
        hdr = np.zeros(1, L.FILE_HEADER)
        hdr["magic"], hdr["version"], hdr["meta_len"] = magic, version, len(meta_bytes)
        self.f.write(hdr.tobytes() + meta_bytes)

    def chunk(self, ctype: int, payload: bytes, *, count: int = 0, vcpu: int = 0, codec: int | None = None,
              bad_crc: bool = False, bad_magic: bool = False, bad_zstd: bool = False, cut: int | None = None,
              seq: int | None = None) -> int:
        """Write one chunk; returns its byte offset. ``cut`` keeps only that many bytes of it (a dying writer)."""
        codec = self.codec if codec is None else codec
        stored = zstandard.ZstdCompressor().compress(payload) if codec == L.CODEC_ZSTD else payload
        if bad_zstd:
            stored = b"\x28\xb5\x2f\xfd" + b"\xff" * max(8, len(stored))  # zstd magic, then garbage
        h = np.zeros(1, L.CHUNK_HEADER)
        h["magic"] = 0xDEADBEEF if bad_magic else L.CHUNK_MAGIC
        h["type"], h["vcpu"], h["codec"] = ctype, vcpu, codec
        h["crc32"] = zlib.crc32(stored) ^ (1 if bad_crc else 0)
        h["stored_len"], h["raw_len"], h["count"] = len(stored), len(payload), count
        h["seq"] = self.seq if seq is None else seq
        off = self.f.tell()
        data = h.tobytes() + stored
        self.f.write(data if cut is None else data[:cut])
        self.offsets.append(off)
        self.seq += 1
        return off

    def info(self, **kw: Any) -> int:
        """INFO chunk: DEFAULT_INFO updated with the keyword arguments (chunk options such as cut= apart)."""
        opts, fields = _split(kw)
        return self.chunk(L.CHUNK_INFO, json.dumps({**DEFAULT_INFO, **fields}).encode(), **opts)

    def insns(self, insns: Sequence[Insn | tuple], **kw: Any) -> int:
        """INSNS chunk; ids continue densely from the previous chunk. Returns the first id assigned."""
        first = self.next_id
        arr = np.zeros(len(insns), L.INSN)
        for j, ins in enumerate(insns):
            ins = ins if isinstance(ins, Insn) else Insn(*ins)
            arr[j] = (ins.vaddr, self.next_id if ins.id is None else ins.id, ins.size, ins.priv, ins.flags, ins.cmo)
            self.next_id = max(self.next_id, int(arr[j]["id"]) + 1)
        self.chunk(L.CHUNK_INSNS, arr.tobytes(), count=len(arr), **kw)
        return first

    def insn_paddrs(self, rows: Sequence[tuple[int, int]], **kw: Any) -> int:
        """INSN_PADDRS chunk: (instruction id, physical address) rows."""
        arr = np.zeros(len(rows), L.INSN_PADDR_ROW)
        arr["id"] = [r[0] for r in rows]
        arr["paddr"] = [r[1] for r in rows]
        return self.chunk(L.CHUNK_INSN_PADDRS, arr.tobytes(), count=len(arr), **kw)

    def events(self, vcpu: int, events: Iterable[tuple], **kw: Any) -> int:
        """EVENTS chunk of one vCPU (tuples from exec_ev / data_ev / mark_ev)."""
        arr = np.array(list(events), dtype=L.EVENT)
        return self.chunk(L.CHUNK_EVENTS, events_to_columns(arr), count=len(arr), vcpu=vcpu, **kw)

    def end(self, **kw: Any) -> int:
        """END chunk (marks the file complete): {"complete": true} plus the keyword arguments as totals."""
        opts, totals = _split(kw)
        return self.chunk(L.CHUNK_END, json.dumps({"complete": True, **totals}).encode(), **opts)

    def raw(self, data: bytes) -> None:
        """Append arbitrary bytes (e.g. garbage after the last chunk)."""
        self.f.write(data)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simple_trace(path: str | Path, *, codec: int = L.CODEC_RAW, end: bool = True) -> TraceWriter:
    """A small two-vCPU trace with fetches, loads, stores and a marker (used by several tests).

    vCPU 0 runs 3 instructions at 0x1000 (pos 0..2), its 2nd loads 8 bytes from 0x8000 (pos 3, paddr known);
    vCPU 1 runs 2 instructions at 0x2000 (pos 4..5), stores 4 bytes to 0x9004 (pos 6, MMIO, no paddr),
    then executes a marker instruction (pos 7) and the MEMTAP_MARK(42) record (pos 8).
    """
    w = TraceWriter(path, codec=codec)
    w.info(smp_vcpus=2)
    w.insns([Insn(0x1000, 4, L.PRIV_MACHINE), Insn(0x1004, 2, L.PRIV_MACHINE), Insn(0x1006, 4, L.PRIV_MACHINE)])
    w.events(0, [exec_ev(0, 3, pos=0, icount=1), data_ev(1, 0x8000, pos=3, icount=2, paddr=0x80008000)])
    w.insns([Insn(0x2000, 4, L.PRIV_USER), Insn(0x2004, 4, L.PRIV_USER), Insn(0x2008, 4, L.PRIV_USER, L.INSN_MARKER)])
    w.events(1, [exec_ev(3, 2, pos=4, icount=10), data_ev(4, 0x9004, pos=6, icount=11, size=4, store=True, io=True),
                 exec_ev(5, 1, pos=7, icount=12), mark_ev(5, 42, pos=8, icount=12)])
    if end:
        w.end(events=6)
    w.close()
    return w


def empty_trace(path: str | Path) -> None:
    """A complete trace (INFO and END chunks) that holds no records."""
    with TraceWriter(path) as w:
        w.info()
        w.end()
