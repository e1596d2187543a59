"""Distinct lines per group of records: mtrace's distinct-sys, for whatever groups a trace can name.

mscan --distinct-sys counts, per system call, the distinct lines each call touched with traffic (accesses that
moved a line between cores). memtap traces do not yet say which process or system call a record belongs to;
when they do (a ``pid`` column; system-call records that open a call which ends when its thread returns to user
mode), each becomes a group id per record, and this counter gives the table. Memory grows with the distinct
(group, line) pairs, never with the records.
"""

from __future__ import annotations

import numpy as np

from memtap.analysis.summary import Distinct

PAIR = np.dtype([("group", "<u8"), ("line", "<u8")])


class DistinctLines:
    """Per group id: distinct lines touched, and distinct lines touched by accesses that moved them."""

    def __init__(self, line_size: int = 64) -> None:
        self.shift = np.uint64(line_size.bit_length() - 1)
        self.touched = Distinct(PAIR)
        self.moved = Distinct(PAIR)

    def add(self, groups: np.ndarray, addr: np.ndarray, size: np.ndarray, moved: np.ndarray) -> None:
        """One batch of data accesses: their group ids, addresses, sizes and movement flags (a line-crossing
        access counts in both lines)."""
        groups = np.asarray(groups, np.uint64)
        addr = np.asarray(addr, np.uint64)
        last = addr + np.maximum(np.asarray(size, np.uint64), 1) - np.uint64(1)
        first_line, last_line = addr >> self.shift, last >> self.shift
        cross = last_line != first_line
        g = np.concatenate([groups, groups[cross]])
        ln = np.concatenate([first_line, last_line[cross]])
        mv = np.concatenate([moved, np.asarray(moved)[cross]]).astype(bool)
        pairs = np.empty(len(g), PAIR)
        pairs["group"], pairs["line"] = g, ln
        self.touched.add(pairs)
        self.moved.add(pairs[mv])

    def table(self) -> list[dict[str, int]]:
        """[{"group", "lines", "moved_lines"}] by group id."""
        t, m = self.touched.values(), self.moved.values()
        groups, lines = np.unique(t["group"], return_counts=True)
        mg, ml = np.unique(m["group"], return_counts=True)
        moved = dict(zip(mg.tolist(), ml.tolist(), strict=True))
        return [{"group": g, "lines": n, "moved_lines": moved.get(g, 0)}
                for g, n in zip(groups.tolist(), lines.tolist(), strict=True)]
