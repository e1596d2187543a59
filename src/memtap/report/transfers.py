"""Line transfers between vCPUs for the report, under mtrace's rule: a load is a transfer from the line's last
writer when another vCPU wrote it since this vCPU last accessed it; a store is a transfer from the line's most
recent other accessor when another vCPU accessed it since its last write (core.c, rp_xfer_feed, has the state).

This is the report's own small implementation until `memtap sharing` (memtap.analysis.sharing) exists; then
the report takes the matrix and the shared lines from there. Only lines that more than one vCPU touched can
have transfers, so only their accesses are fed to the counter (the lines come from the report's line table).
"""

from __future__ import annotations

import numpy as np

from memtap.report.native import TransferCounter
from memtap.trace import layout as L

LINE_SHIFT = np.uint64(6)


def popcount(masks: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    m = masks.astype(np.uint64)
    return np.unpackbits(m.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


class TransferPass:
    """Feeds the accesses to shared lines (sorted line numbers) of record batches in global order to the
    counter; an access that straddles two lines is an access to each."""

    def __init__(self, shared: np.ndarray) -> None:
        self.shared = np.asarray(shared, np.uint64)
        self.counter = TransferCounter()

    def feed(self, batch: np.ndarray) -> None:
        kind = batch["kind"]
        data = (kind == L.KIND_LOAD) | (kind == L.KIND_STORE)
        if not data.any() or not len(self.shared):
            return
        d = batch[data]
        first = d["vaddr"] >> LINE_SHIFT
        last = (d["vaddr"] + np.maximum(d["size"].astype(np.uint64), 1) - np.uint64(1)) >> LINE_SHIFT
        two = (last != first) & (last > first)
        # one row per line touched, a straddling access's second line right after its first
        order = np.arange(len(d), dtype=np.float64)
        lines = np.concatenate([first, last[two]])
        at = np.concatenate([order, order[two] + 0.5])
        who = np.concatenate([d["vcpu"], d["vcpu"][two]])
        store = np.concatenate([d["kind"] == L.KIND_STORE, (d["kind"] == L.KIND_STORE)[two]])
        i = np.minimum(np.searchsorted(self.shared, lines), len(self.shared) - 1)
        keep = self.shared[i] == lines
        if not keep.any():
            return
        seq = np.argsort(at[keep], kind="stable")
        self.counter.feed(lines[keep][seq], who[keep][seq], store[keep][seq])

    def result(self) -> tuple[np.ndarray, dict[int, int]]:
        """The vCPU x vCPU matrix [from][to] and the transfers per line (those with any)."""
        lines = self.counter.lines()
        out = self.counter.matrix(), {int(a): int(n) for a, n in lines}
        self.counter.close()
        return out
