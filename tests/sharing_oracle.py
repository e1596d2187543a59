"""The sharing analysis's rules, brute force: one Python loop over the accesses in order, with sets, written from
docs/sharing.md and not from the analysis's code, so the tests compare two independent computations."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Access:
    vcpu: int
    store: bool
    addr: int
    size: int
    sharer: int  # the thread, or the vCPU again
    pc: int = 0


@dataclass
class Oracle:
    transfers: Counter = field(default_factory=Counter)            # line -> transfers (lines start uncached)
    matrix: Counter = field(default_factory=Counter)               # (from vCPU, to vCPU) -> transfers
    transfer_records: int = 0
    movement_records: int = 0                                      # mtrace: lines start held by every core
    vcpus: dict = field(default_factory=lambda: defaultdict(set))      # line -> vCPUs
    sharers: dict = field(default_factory=lambda: defaultdict(set))    # line -> sharers
    readers: dict = field(default_factory=lambda: defaultdict(set))    # line -> vCPUs that loaded
    writers: dict = field(default_factory=lambda: defaultdict(set))    # line -> vCPUs that stored
    written: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))  # line -> sharer -> bytes
    counts: Counter = field(default_factory=Counter)               # (line, offset, sharer, store) -> accesses
    sequence: dict = field(default_factory=lambda: defaultdict(list))  # line -> vCPU of each access, in order
    order: list = field(default_factory=list)                      # the vCPU of every access, in order

    def kind(self, line: int) -> str:
        masks = [b for b in self.written[line].values() if b]
        if len(masks) < 2:
            return "read"
        for i, a in enumerate(masks):
            for b in masks[i + 1:]:
                if a & b:
                    return "true"
        return "false"

    def runs(self, line: int | None = None) -> list[int]:
        """Lengths of the runs of one vCPU: on one line, or over all accesses (line None)."""
        out, prev = [], None
        for v in self.order if line is None else self.sequence[line]:
            if v == prev:
                out[-1] += 1
            else:
                out.append(1)
            prev = v
        return out


def brute_force(accesses: list[Access], line_size: int = 64) -> Oracle:
    o = Oracle()
    holders: dict[int, set[int]] = {}        # who holds a valid copy; absent = nobody yet
    ever_written: set[int] = set()
    last_writer: dict[int, int] = {}
    for a in accesses:
        moved = transferred = False
        first, last = a.addr // line_size, (a.addr + max(a.size, 1) - 1) // line_size
        for line in range(first, last + 1):
            base = line * line_size
            lo, hi = max(a.addr, base), min(a.addr + max(a.size, 1), base + line_size)
            held = holders.setdefault(line, set())
            if a.store:
                # a write after another core's access: any other core still holds the line
                t = bool(held - {a.vcpu})
                # it comes from the most recent other core to access the line
                source = next(v for v in reversed(o.sequence[line]) if v != a.vcpu) if t else None
                # mtrace: logged unless the line is known to be held by this core alone
                m = t or line not in ever_written
                holders[line] = {a.vcpu}
                ever_written.add(line)
                last_writer[line] = a.vcpu
                o.writers[line].add(a.vcpu)
                o.written[line][a.sharer] |= set(range(lo - base, hi - base))
            else:
                # a read after another core's write: written, and this core's copy is gone (or never was)
                t = line in ever_written and a.vcpu not in held
                source = last_writer.get(line)   # it comes from the line's last writer
                m = t
                held.add(a.vcpu)
                o.readers[line].add(a.vcpu)
            o.transfers[line] += t
            if t:
                o.matrix[(source, a.vcpu)] += 1
            transferred |= t
            moved |= m
            o.vcpus[line].add(a.vcpu)
            o.sharers[line].add(a.sharer)
            o.counts[(line, lo - base, a.sharer, a.store)] += 1
            o.sequence[line].append(a.vcpu)
        o.order.append(a.vcpu)
        o.transfer_records += transferred
        o.movement_records += moved
    for line in o.written:  # sets of byte offsets -> bit masks
        o.written[line] = {s: sum(1 << b for b in bs) for s, bs in o.written[line].items()}
    return o
