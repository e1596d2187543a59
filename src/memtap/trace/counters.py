"""Counts-mode traces (``memtap record --counts``): per-instruction execution counts rebuilt from block counters.

The plugin counts, per translated block, how often it was entered and how often it reached its last instruction,
plus every instruction's loads and stores (trace.h, struct memtap_count), all exact. An instruction between a
block's first and last ran at most as often as the block was entered and at least as often as it completed; the
two differ only when the block was left early (a fault, or QEMU restarting an instruction that touched MMIO).
Counts here take the entries: the usual reasons for leaving a block early (a device access that QEMU re-executes,
a page fault whose handler retries the instruction) do run the instructions before the exit, and coverage must
not lose them. ``early_exits`` bounds the over-count per instruction; the ordered execution trace
(``--events fetch``) is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from memtap.trace import layout as L
from memtap.trace.reader import Trace


@dataclass(frozen=True)
class InsnCounts:
    """Per instruction id of the trace's instruction table (summed over vCPUs and COUNTS chunks)."""

    table: np.ndarray        # INSN rows, indexed by id
    executed: np.ndarray     # u64: exact for a block's first and last instruction, an upper bound between
    loads: np.ndarray
    stores: np.ndarray
    early_exits: np.ndarray  # u64: entries minus completions of the instruction's block (0 where exact)


def _raw_sums(trace: Trace, n: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Counter sums per id (n x 3: executed, loads, stores) over all vCPUs, and the same per vCPU."""
    total = np.zeros((n, 3), np.uint64)
    per_vcpu: dict[int, np.ndarray] = {}
    for rows in trace.count_rows():
        vals = np.stack([rows["executed"], rows["loads"], rows["stores"]], axis=1)
        ids = rows["insn"].astype(np.int64)
        if len(ids) and int(ids.max()) >= n:
            raise ValueError(f"a COUNTS row names instruction {int(ids.max())}, beyond the table's {n}")
        np.add.at(total, ids, vals)
        for v in np.unique(rows["vcpu"]):
            sel = rows["vcpu"] == v
            acc = per_vcpu.setdefault(int(v), np.zeros((n, 3), np.uint64))
            np.add.at(acc, ids[sel], vals[sel])
    return total, per_vcpu


def _blocks(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each instruction id, the ids of its translation block's first and last instruction."""
    n = len(table)
    ids = np.arange(n)
    first = np.maximum.accumulate(np.where(table["flags"] & L.INSN_BLOCK, ids, 0)) if n else ids
    starts = np.flatnonzero(first == ids)
    last = np.repeat(np.append(starts[1:], n) - 1, np.diff(np.append(starts, n)))
    return first, last


def _expand(blocks: tuple[np.ndarray, np.ndarray], raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Executed counts per id from block entries (first instruction) and completions (last instruction)."""
    first, last = blocks
    ids = np.arange(len(first))
    entries, completions = raw[first, 0], raw[last, 0]
    single = first == last
    completions = np.where(single, entries, completions)
    executed = np.where((ids == last) & (ids != first), completions, entries)
    early = np.where((ids != first) & (ids != last), entries - np.minimum(completions, entries), 0)
    return executed.astype(np.uint64), early.astype(np.uint64)


def insn_counts(trace: Trace, vcpu: int | None = None) -> InsnCounts:
    """Per-instruction counts of a counts-mode trace, of all vCPUs or of one."""
    table = trace.insn_table()
    raw, per_vcpu = _raw_sums(trace, len(table))
    if vcpu is not None:
        raw = per_vcpu.get(vcpu, np.zeros_like(raw))
    executed, early = _expand(_blocks(table), raw)
    return InsnCounts(table, executed, raw[:, 1].copy(), raw[:, 2].copy(), early)


def summary(trace: Trace) -> dict[str, Any]:
    """Totals of a counts-mode trace, overall and per vCPU and privilege level (for ``memtap stats``)."""
    table = trace.insn_table()
    raw, per_vcpu = _raw_sums(trace, len(table))
    blocks = _blocks(table)

    def totals(r: np.ndarray, executed: np.ndarray, early: np.ndarray) -> dict[str, int]:
        return {"executed_insns": int(executed.sum()), "loads": int(r[:, 1].sum()), "stores": int(r[:, 2].sum()),
                "uncertain_insns": int(early.sum())}

    by_priv = {}
    executed, early = _expand(blocks, raw)
    for p in np.unique(table["priv"]):
        sel = table["priv"] == p
        by_priv[L.priv_name(int(p))] = int(executed[sel].sum())
    return {
        "mode": "counts",
        "complete": trace.complete,
        **totals(raw, executed, early),
        "by_vcpu": {str(v): totals(r, *_expand(blocks, r)) for v, r in sorted(per_vcpu.items())},
        "insns_by_priv": by_priv,
        "distinct_pcs": int(len(np.unique(table["vaddr"][executed > 0]))),
    }


def format_summary(s: dict[str, Any]) -> str:
    """The counts summary as text."""
    lines = [
        f"counts-mode trace ({'complete' if s['complete'] else 'truncated'})",
        f"executed instructions: {s['executed_insns']}  loads: {s['loads']}  stores: {s['stores']}",
        f"distinct instruction addresses executed: {s['distinct_pcs']}",
    ]
    if s["uncertain_insns"]:
        lines.append(f"blocks left early: up to {s['uncertain_insns']} of the executions counted may not have run "
                     "(record with --events fetch for exact counts)")
    for v, t in s["by_vcpu"].items():
        lines.append(f"vcpu {v}: {t['executed_insns']} instructions, {t['loads']} loads, {t['stores']} stores")
    for p, k in s["insns_by_priv"].items():
        lines.append(f"{p}: {k} instructions")
    return "\n".join(lines)
