"""The report's one pass over a trace: every count the page shows, in memory bounded by the footprint.

The native core (core.c) counts records per vCPU, privilege and kind, touches per 4 KiB page and 64-byte line,
accesses per instruction address, an address x time histogram and records per time bin. This module feeds it
the columns it needs from ``Trace.columns`` and keeps the few records drawn one by one on the time axis
(markers, exceptions, system calls) up to a cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from memtap.report import native
from memtap.trace import layout as L
from memtap.trace.reader import Trace

TIME_BINS = 512          # at most this many time bins (the core widens them by powers of two)
HEAT_CELLS = 1 << 20     # the address x time histogram's cells before the core halves its address resolution
EVENT_CAP = 2000         # records of one kind drawn one by one on the time axis; beyond, per-bin counts only
BATCH_ROWS = 1 << 20
# Kinds drawn on the time axis; "syscall" counts once the trace format has such records.
TIME_AXIS_KINDS = ("marker", "exception", "syscall")


@dataclass(frozen=True)
class Selection:
    """The records a report covers: a half-open pos range and a set of vCPUs (None: all)."""

    pos_range: tuple[int | None, int | None] | None = None
    vcpus: tuple[int, ...] | None = None

    def kwargs(self) -> dict:
        return {"pos_range": self.pos_range, "vcpus": None if self.vcpus is None else list(self.vcpus)}


@dataclass
class Events:
    """One time-axis kind's records: how many there are, and up to EVENT_CAP of them (rows of pos, vcpu,
    vaddr, value, flags) unless there were more."""

    count: int = 0
    rows: list[np.ndarray] = field(default_factory=list)

    def add(self, rows: np.ndarray) -> None:
        self.count += len(rows)
        if self.count <= EVENT_CAP:
            self.rows.append(rows)
        else:
            self.rows = []

    def drawn(self) -> np.ndarray | None:
        """All rows, in pos order, or None when there were more than EVENT_CAP."""
        if self.count > EVENT_CAP:
            return None
        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, 5), np.uint64)
        return rows[np.argsort(rows[:, 0], kind="stable")]


@dataclass
class Aggregates:
    """What the pass found: the core's state and tables, the time-axis records, and how long it took: wall
    seconds of the whole pass, and CPU seconds of this thread inside the aggregation (the core and the time-axis
    records; CPU time, so a busy machine does not inflate it)."""

    state: dict[str, int]
    tables: dict[int, np.ndarray]
    events: dict[str, Events]
    seconds_total: float
    cpu_total: float
    cpu_aggregating: float

    @property
    def empty(self) -> bool:
        return not self.state["seen"]


def aggregate(trace: Trace, selection: Selection, time_bins: int = TIME_BINS,
              heat_cells: int = HEAT_CELLS) -> Aggregates:
    """One pass over the selected records (file order: each chunk once, as stored)."""
    core = native.Aggregator(time_bins, heat_cells)
    codes = {k: L.KIND_CODES[k] for k in TIME_AXIS_KINDS if k in L.KIND_CODES}
    events = {k: Events() for k in TIME_AXIS_KINDS}
    wanted = [*native.COLUMN_TYPES, "value"]
    start, start_cpu = time.perf_counter(), time.thread_time()
    busy = 0.0
    try:
        for cols in trace.columns(wanted, batch_rows=BATCH_ROWS, **selection.kwargs()):
            t0 = time.thread_time()
            core.feed(cols)
            kind = cols["kind"]
            rare = np.flatnonzero(kind >= L.KIND_MARKER)
            for name, code in codes.items():
                idx = rare[kind[rare] == code]
                if len(idx):
                    events[name].add(np.stack([cols["pos"][idx], cols["vcpu"][idx].astype(np.uint64),
                                               cols["vaddr"][idx], cols["value"][idx],
                                               cols["flags"][idx].astype(np.uint64)], axis=1))
            busy += time.thread_time() - t0
        tables = {t: core.table(t) for t in native.TABLE_IDS}
        return Aggregates(core.state(), tables, events, time.perf_counter() - start,
                          time.thread_time() - start_cpu, busy)
    finally:
        core.close()
