"""The two streaming passes of the sharing analysis over a trace's loads and stores in global (pos) order.

Memory grows with the distinct lines the trace touches (one 32-byte entry each) and with what the shared lines
hold (per-offset rows), never with the number of records. Pass 1 finds the lines more than one vCPU or sharer
touches and counts line movement; pass 2 reads the same records again for the per-offset detail of those lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from memtap.analysis.sharing.groups import DistinctLines
from memtap.analysis.sharing.native import MULTI_VCPU, Core
from memtap.errors import UserError
from memtap.trace import layout as L
from memtap.trace.reader import Trace

# The columns naming the thread and process behind each record, once traces carry them (the OS work adds asid,
# pid, tid).
THREAD_COLUMN = "tid"
PROCESS_COLUMN = "pid"
# Columns each pass reads (the key address column, and the thread column when used, come on top).
PASS1_COLUMNS = ("vcpu", "kind", "size", "flags")
PASS2_COLUMNS = ("vcpu", "kind", "size", "flags", "vaddr", "pc")

# A source yields, for the column names asked for, batches of the loads and stores in pos order; it is called
# once per pass and must yield the same records both times.
Source = Callable[[list[str]], Iterable[dict[str, np.ndarray]]]


@dataclass(frozen=True)
class Passes:
    """What the core found: counters, line counts, detail entries, per-offset rows, sharer ids, runs."""

    line_size: int
    physical: bool
    threads: bool
    counters: dict[str, int]
    lines: int
    multi_vcpu_lines: int
    multi_sharer_lines: int
    details: np.ndarray        # native.DETAIL
    rows: np.ndarray           # native.ROW
    sharer_ids: np.ndarray     # dense sharer index -> thread id (threads only)
    runs_all: np.ndarray       # (length, runs) over all data accesses
    runs_line: np.ndarray      # (length, runs) per line touched by more than one vCPU
    per_group: list[dict[str, int]] | None  # distinct lines per group (process) when grouped


def line_shift(line_size: int) -> int:
    """log2 of a line size the analysis accepts: a power of two from 8 to 4096 bytes."""
    if line_size < 8 or line_size > 4096 or line_size & (line_size - 1):
        raise UserError(f"--line-size {line_size}: a power of two from 8 to 4096 bytes")
    return line_size.bit_length() - 1


def run_passes(source: Source, line_size: int = 64, physical: bool = False, threads: bool = False,
               virtual: bool = True, group: str | None = None) -> Passes:
    """Both passes over ``source``. ``physical``: key lines by ``paddr`` (records without one are skipped);
    ``threads``: the sharer is the THREAD_COLUMN value instead of the vCPU; ``virtual``: the records carry
    virtual addresses (to name physically keyed lines); ``group``: a column to count distinct lines by."""
    core = Core(line_shift(line_size))
    key = "paddr" if physical else "vaddr"
    sharer = THREAD_COLUMN if threads else None
    extra = [key] + ([sharer] if sharer else [])
    distinct = DistinctLines(line_size) if group else None
    for cols in source(_unique([*PASS1_COLUMNS, *extra] + ([group] if group else []))):
        moved = core.pass1(cols, key, sharer, physical, moved=distinct is not None)
        if distinct is not None:
            keep = analysed(cols, physical)
            distinct.add(cols[group][keep], cols[key][keep], cols["size"][keep], moved[keep])
    pass2 = [c for c in PASS2_COLUMNS if virtual or c != "vaddr"]
    for cols in source(_unique([*pass2, *extra])):
        core.pass2(cols, key, sharer, physical)
    core.close()
    lines, multi_vcpu, multi_sharer = core.line_counts()
    return Passes(line_size, physical, threads, core.counters(), lines, multi_vcpu, multi_sharer, core.details(),
                  core.rows(), core.sharers(), core.runs(0), core.runs(1),
                  None if distinct is None else distinct.table())


class Transfers:
    """Pass 1 alone, streamed: line transfers between vCPUs by mtrace's rule, for a caller that reads the trace
    in pos order anyway (`memtap report`, beside its cache simulation). Fed batches of records in pos order
    (kinds other than loads and stores are skipped), it gives the vCPU x vCPU matrix and the lines more than
    one vCPU loaded or stored with their transfers; the per-offset detail of pass 2 is not collected."""

    def __init__(self, line_size: int = 64, physical: bool = False) -> None:
        self.shift = line_shift(line_size)
        self.physical = physical
        self._core = Core(self.shift)

    def feed(self, cols: dict[str, np.ndarray] | np.ndarray) -> None:
        """One batch: columns (or RECORD arrays) with vcpu, kind, size, flags and the key address."""
        self._core.pass1(cols, "paddr" if self.physical else "vaddr", None, self.physical)

    def matrix(self) -> np.ndarray:
        """Transfers [from vCPU][to vCPU], MAX_VCPUS x MAX_VCPUS."""
        return self._core.matrix()

    def lines(self) -> np.ndarray:
        """(line address, transfers) of every line more than one vCPU loaded or stored, by address."""
        d = self._core.details()
        d = d[(d["flags"] & MULTI_VCPU) != 0]
        out = np.stack([d["line"] << np.uint64(self.shift), d["transfers"]], axis=1).reshape(-1, 2)
        return out[np.argsort(out[:, 0], kind="stable")]


def analysed(cols: dict[str, np.ndarray], physical: bool) -> np.ndarray:
    """Which records the analysis uses: loads and stores to memory (not MMIO), with a physical address when
    lines are keyed by it (the same rule as the core's)."""
    kind, flags = cols["kind"], cols["flags"]
    keep = ((kind == L.KIND_LOAD) | (kind == L.KIND_STORE)) & ((flags & L.RF_IO) == 0)
    return keep & ((flags & L.RF_PADDR) != 0) if physical else keep


def movement_flags(batches: Iterable[dict[str, np.ndarray]], line_size: int = 64, physical: bool = False
                   ) -> Iterator[np.ndarray]:
    """For each batch (in pos order), which records mtrace's movement recording mode would log: the accesses
    that move a line between cores, every line starting out shared by all vCPUs (docs/sharing.md)."""
    core = Core(line_shift(line_size))
    key = "paddr" if physical else "vaddr"
    for cols in batches:
        yield core.pass1(cols, key, None, physical, moved=True)


def trace_source(trace: Trace, batch_rows: int = 1 << 20) -> Source:
    """A Source reading the trace's loads and stores in pos order."""

    def source(names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        return trace.columns(names, kinds=[L.KIND_LOAD, L.KIND_STORE], order="pos", batch_rows=batch_rows)

    return source


def has_column(name: str) -> bool:
    """Whether traces carry this column (the thread and process columns not yet: the OS work adds them)."""
    return name in (L.RECORD.names or ())


def has_physical(trace: Trace) -> bool:
    """Whether the trace's data records carry physical addresses (recorded with --addr both or physical)."""
    return trace.info.get("addresses", "both") in ("both", "physical")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
