"""From the core's per-offset rows to shared lines: readers, writers, the bytes each sharer wrote, the class, the
per-offset table (Predator's word-level rows, perf c2c's offset view) and the shared addresses.

A sharer is a thread where the trace knows threads, else a vCPU. The class compares the bytes each sharer
wrote: ``true`` when two sharers wrote a common byte, ``false`` when at least two wrote and their bytes are
disjoint, ``read`` when fewer than two sharers wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memtap.analysis.sharing.native import MULTI_SHARER
from memtap.analysis.sharing.passes import Passes

NO_VLINE = (1 << 64) - 1


@dataclass
class Code:
    """One pc's reads and writes of one offset by one sharer."""

    pc: int
    reads: int = 0
    writes: int = 0


@dataclass
class Offset:
    """Accesses by one sharer that start at one offset of a line."""

    offset: int
    sharer: int
    vcpus: set[int] = field(default_factory=set)
    sizes: set[int] = field(default_factory=set)
    reads: int = 0
    writes: int = 0
    code: dict[int, Code] = field(default_factory=dict)


@dataclass
class Line:
    """A line that more than one sharer touched."""

    address: int                 # of the line, in the address space lines are keyed by
    vaddr: int | None            # first virtual address of the line seen (None: unknown)
    aliased: bool                # seen at more than one virtual line
    transfers: int
    readers: list[int]           # vCPUs
    writers: list[int]           # vCPUs
    threads: list[int]           # thread ids (empty without threads)
    kind: str
    written: dict[int, list[tuple[int, int]]]   # sharer -> [start, end) byte ranges within the line
    read: dict[int, list[tuple[int, int]]]
    offsets: list[Offset]


def classify(written: dict[int, int]) -> str:
    """``true``, ``false`` or ``read`` from each sharer's written-byte mask (bit i: byte i of the line)."""
    masks = [m for m in written.values() if m]
    if len(masks) < 2:
        return "read"
    seen = overlap = 0
    for m in masks:
        overlap |= seen & m
        seen |= m
    return "true" if overlap else "false"


def ranges(mask: int) -> list[tuple[int, int]]:
    """The runs of set bits of a byte mask as half-open [start, end) ranges."""
    out = []
    start = None
    i = 0
    while mask >> i:
        bit = (mask >> i) & 1
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            out.append((start, i))
            start = None
        i += 1
    if start is not None:
        out.append((start, i))
    return out


def shared_lines(p: Passes) -> list[Line]:
    """Every line touched by more than one sharer, most transfers first (then by address)."""
    rows = np.sort(p.rows, order=["detail", "offset", "sharer", "pc"])
    bounds = np.flatnonzero(np.diff(rows["detail"].astype(np.int64))) + 1
    groups = np.split(rows, bounds) if len(rows) else []
    out = [_line(p, g) for g in groups if p.details[int(g["detail"][0])]["flags"] & MULTI_SHARER]
    out.sort(key=lambda ln: (-ln.transfers, ln.address))
    return out


def _line(p: Passes, rows: np.ndarray) -> Line:
    d = p.details[int(rows["detail"][0])]
    shift = p.line_size.bit_length() - 1
    readers: set[int] = set()
    writers: set[int] = set()
    sharers: set[int] = set()
    wmask: dict[int, int] = {}
    rmask: dict[int, int] = {}
    offsets: dict[tuple[int, int], Offset] = {}
    for pc, count, _, who, vcpu, off, ln, store in rows.tolist():
        who = int(p.sharer_ids[who]) if p.threads else who
        sharers.add(who)
        bits = ((1 << ln) - 1) << off
        (writers if store else readers).add(vcpu)
        masks = wmask if store else rmask
        masks[who] = masks.get(who, 0) | bits
        o = offsets.get((off, who))
        if o is None:
            o = offsets[(off, who)] = Offset(off, who)
        o.vcpus.add(vcpu)
        o.sizes.add(ln)
        c = o.code.setdefault(pc, Code(pc))
        if store:
            o.writes += count
            c.writes += count
        else:
            o.reads += count
            c.reads += count
    vline = int(d["vline"])
    physical_only = p.physical and vline == NO_VLINE
    return Line(
        address=int(d["line"]) << shift,
        vaddr=None if physical_only else (vline << shift if p.physical else int(d["line"]) << shift),
        aliased=bool(d["aliased"]),
        transfers=int(d["transfers"]),
        readers=sorted(readers),
        writers=sorted(writers),
        threads=sorted(sharers) if p.threads else [],
        kind=classify(wmask),
        written={k: ranges(m) for k, m in sorted(wmask.items())},
        read={k: ranges(m) for k, m in sorted(rmask.items())},
        offsets=sorted(offsets.values(), key=lambda o: (o.offset, o.sharer)),
    )


@dataclass
class SharedAddress:
    """An exact address (access start) touched by more than one sharer, as mscan --shared-addresses."""

    address: int                 # key address space
    vaddr: int | None
    accesses: dict[int, int]     # sharer -> reads + writes

    @property
    def total(self) -> int:
        return sum(self.accesses.values())


def shared_addresses(lines: list[Line]) -> list[SharedAddress]:
    """Addresses more than one sharer accessed, most accesses first."""
    out = []
    for ln in lines:
        by_offset: dict[int, dict[int, int]] = {}
        for o in ln.offsets:
            counts = by_offset.setdefault(o.offset, {})
            counts[o.sharer] = counts.get(o.sharer, 0) + o.reads + o.writes
        for off, counts in by_offset.items():
            if len(counts) > 1:
                out.append(SharedAddress(ln.address + off, None if ln.vaddr is None else ln.vaddr + off,
                                         dict(sorted(counts.items()))))
    out.sort(key=lambda a: (-a.total, a.address))
    return out
