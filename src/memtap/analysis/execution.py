"""Per-instruction execution and access counts of a trace: what coverage and profiles are computed from.

The counts are aggregated batch by batch, so memory grows with the number of distinct instruction addresses a
trace touches, never with its length; several traces (a test suite run as many guests) sum into one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from memtap.trace import layout as L
from memtap.trace.counters import insn_counts
from memtap.trace.reader import Trace

# Partial per-batch results are folded into the running total once they hold this many rows beyond it.
_FOLD_ROWS = 1 << 20
_COUNT_FIELDS = ("executed", "loads", "stores")


@dataclass(frozen=True)
class ExecutionCounts:
    """Counts per instruction address, sorted by ``pc`` (unique).

    ``size``: the instruction's length from the trace's instruction table (0 if the table lacks it);
    ``executed``: fetch records (times the instruction started); ``loads``, ``stores``: data records it issued.
    """

    pc: np.ndarray
    size: np.ndarray
    executed: np.ndarray
    loads: np.ndarray
    stores: np.ndarray

    @classmethod
    def empty(cls) -> ExecutionCounts:
        z = np.zeros(0, np.uint64)
        return cls(z, np.zeros(0, np.uint8), z, z, z)

    def __len__(self) -> int:
        return len(self.pc)

    def count_at(self, pcs: np.ndarray, field: str = "executed") -> np.ndarray:
        """The ``field`` count of each address in ``pcs`` (0 where the address never appears)."""
        pcs = np.asarray(pcs, np.uint64)
        col = getattr(self, field)
        if len(self.pc) == 0:
            return np.zeros(len(pcs), np.uint64)
        i = np.minimum(np.searchsorted(self.pc, pcs), len(self.pc) - 1)
        return np.where(self.pc[i] == pcs, col[i], 0).astype(np.uint64)


def _sum_by_pc(pc: np.ndarray, size: np.ndarray, counts: np.ndarray) -> ExecutionCounts:
    """Sum rows of ``counts`` (n x 3: executed, loads, stores) that share a pc; the size is the largest seen."""
    if len(pc) == 0:
        return ExecutionCounts.empty()
    uniq, inv = np.unique(pc, return_inverse=True)
    summed = np.zeros((len(uniq), 3), np.uint64)
    np.add.at(summed, inv, counts)
    sizes = np.zeros(len(uniq), np.uint8)
    np.maximum.at(sizes, inv, size)
    return ExecutionCounts(uniq, sizes, *(np.ascontiguousarray(summed[:, k]) for k in range(3)))


def _stack(parts: list[ExecutionCounts]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pc = np.concatenate([p.pc for p in parts])
    size = np.concatenate([p.size for p in parts])
    counts = np.stack([np.concatenate([getattr(p, f) for p in parts]) for f in _COUNT_FIELDS], axis=1)
    return pc, size, counts


def merge(counts_list: Iterable[ExecutionCounts]) -> ExecutionCounts:
    """Sum the counts of several traces (or batches) per instruction address."""
    parts = [c for c in counts_list if len(c)]
    if not parts:
        return ExecutionCounts.empty()
    if len(parts) == 1:
        return parts[0]
    return _sum_by_pc(*_stack(parts))


def _batch_counts(batch: np.ndarray) -> ExecutionCounts:
    """One batch of records, counted per pc (markers are ignored)."""
    kind = batch["kind"]
    keep = kind <= L.KIND_STORE   # fetches, loads and stores; not markers or cache operations
    pc, kind = batch["pc"][keep], kind[keep]
    uniq, inv = np.unique(pc, return_inverse=True)
    per = np.bincount(inv * 3 + kind.astype(np.int64), minlength=3 * len(uniq)).reshape(-1, 3)
    per = per.astype(np.uint64)
    return ExecutionCounts(uniq, np.zeros(len(uniq), np.uint8), *(np.ascontiguousarray(per[:, k]) for k in range(3)))


def _with_sizes(counts: ExecutionCounts, trace: Trace) -> ExecutionCounts:
    """Fill in instruction lengths from the trace's instruction table."""
    table = trace.insn_table()
    table = table[table["size"] > 0]
    if len(counts) == 0 or len(table) == 0:
        return counts
    order = np.argsort(table["vaddr"], kind="stable")
    va, sz = table["vaddr"][order], table["size"][order]
    i = np.minimum(np.searchsorted(va, counts.pc), len(va) - 1)
    size = np.where(va[i] == counts.pc, sz[i], 0).astype(np.uint8)
    return ExecutionCounts(counts.pc, size, counts.executed, counts.loads, counts.stores)


def _from_records(trace: Trace) -> ExecutionCounts:
    """Counts from a trace's fetch, load and store records, streamed batch by batch."""
    total = ExecutionCounts.empty()
    pending: list[ExecutionCounts] = []
    pending_rows = 0
    for batch in trace.batches(kinds=("fetch", "load", "store")):
        part = _batch_counts(batch)
        pending.append(part)
        pending_rows += len(part)
        if pending_rows > max(_FOLD_ROWS, len(total)):
            total = merge([total, *pending])
            pending, pending_rows = [], 0
    return _with_sizes(merge([total, *pending]), trace)


def _from_counts_chunks(trace: Trace) -> ExecutionCounts:
    """Counts from a counts-mode trace's COUNTS chunks (see memtap.counts for what `executed` means there)."""
    c = insn_counts(trace)
    keep = (c.table["size"] > 0) & ((c.executed | c.loads | c.stores) > 0)   # translated but never run: absent
    counts = np.stack([c.executed[keep], c.loads[keep], c.stores[keep]], axis=1)
    return _sum_by_pc(c.table["vaddr"][keep], c.table["size"][keep], counts)


def execution_counts(trace: Trace) -> ExecutionCounts:
    """Per-instruction execution, load and store counts of one trace (record or counts mode)."""
    if trace.counts_mode:
        return _from_counts_chunks(trace)
    return _from_records(trace)


def has_fetches(trace: Trace) -> bool:
    """Whether the trace was recorded with instruction fetches (INFO ``events``; assumed when absent)."""
    events = trace.info.get("events")
    return events is None or "fetch" in events
