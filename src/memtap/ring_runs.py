"""Fetch runs: how the live ring carries instruction fetches by default (``--ring-fetches runs``).

One ``KIND_FETCH_RUN`` record stands for ``size`` consecutive fetches of one block (trace.h): shared memory then
moves a fraction of the bytes that one 64-byte record per instruction would, which is what lets the ring keep pace
with the file sink. ``expand`` turns a batch into the records a ``--ring-fetches records`` ring would have carried,
field for field; ``accesses`` counts them without expanding.
"""

from __future__ import annotations

import numpy as np

from memtap import layout as L


def accesses(batch: np.ndarray) -> int:
    """Records the batch stands for once its runs are expanded."""
    return int(run_sizes(batch).sum())


def run_sizes(batch: np.ndarray) -> np.ndarray:
    """Per-record count of accesses it stands for (a run's ``size``, otherwise 1)."""
    return np.where(batch["kind"] == L.KIND_FETCH_RUN, batch["size"], 1).astype(np.int64)


def expand(batch: np.ndarray) -> np.ndarray:
    """One record per access, in stream order: the batch itself when it holds no runs, otherwise a new array."""
    runs = batch["kind"] == L.KIND_FETCH_RUN
    if not runs.any():
        return batch
    n = run_sizes(batch)
    out = np.repeat(batch, n)
    start = np.repeat(np.cumsum(n) - n, n)  # the output index where each row's run begins
    k = (np.arange(len(out), dtype=np.int64) - start).astype(np.uint64)  # index within the run
    in_run = np.repeat(runs, n)
    field = np.where(k < 16, out["value"], out["value_hi"])
    sizes = (field >> (np.uint64(4) * (k % np.uint64(16)))) & np.uint64(0xF)
    before = np.cumsum(sizes) - sizes  # bytes of all earlier rows' instructions
    offset = before - before[start]  # ... of the earlier instructions of the same run
    r = out[in_run]
    kr, off = k[in_run], offset[in_run]
    r["pos"] += kr
    r["icount"] += kr
    r["vaddr"] += off
    r["pc"] = r["vaddr"]
    r["paddr"] = np.where(r["flags"] & L.RF_PADDR, r["paddr"] + off, 0)
    r["size"] = sizes[in_run]
    r["kind"] = L.KIND_FETCH
    r["value"] = 0
    r["value_hi"] = 0
    out[in_run] = r
    return out
