"""Fetch runs: how the live ring carries instruction fetches by default (``--ring-fetches runs``).

One ``KIND_FETCH_RUN`` record stands for ``size`` consecutive fetches of one block, and a ``KIND_RUN_LOAD`` /
``KIND_RUN_STORE`` record for a load or store together with the ``fetches`` fetches that end with its instruction
(trace.h): shared memory then moves a fraction of the bytes that one 64-byte record per instruction would, which is
what lets the ring keep pace with the file sink. ``expand`` turns a batch into the records a ``--ring-fetches
records`` ring would have carried, field for field; ``accesses`` counts them without expanding.
"""

from __future__ import annotations

import numpy as np

from memtap.trace import layout as L


def accesses(batch: np.ndarray) -> int:
    """Records the batch stands for once its runs are expanded."""
    return int(run_sizes(batch).sum())


def run_sizes(batch: np.ndarray) -> np.ndarray:
    """Per-record count of accesses it stands for (a run's ``size``, a run load/store's fetches plus 1, else 1)."""
    kind = batch["kind"]
    fused = (kind == L.KIND_RUN_LOAD) | (kind == L.KIND_RUN_STORE)
    n = np.where(kind == L.KIND_FETCH_RUN, batch["size"], 1).astype(np.int64)
    return n + np.where(fused, batch["fetches"], 0)


def expand(batch: np.ndarray) -> np.ndarray:
    """One record per access, in stream order: the batch itself when it holds no runs, otherwise a new array."""
    kind = batch["kind"]
    runs = kind == L.KIND_FETCH_RUN
    fused = (kind == L.KIND_RUN_LOAD) | (kind == L.KIND_RUN_STORE)
    if not (runs.any() or fused.any()):
        return batch
    n = run_sizes(batch)
    out = np.repeat(batch, n)
    start = np.repeat(np.cumsum(n) - n, n)  # the output index where each row's group begins
    k = (np.arange(len(out), dtype=np.int64) - start).astype(np.uint64)  # index within the group
    carried = np.repeat(np.where(fused, batch["fetches"], 0), n).astype(np.uint64)  # a run load/store's fetches
    from_run, from_fused = np.repeat(runs, n), np.repeat(fused, n)
    fetch = from_run | (from_fused & (k < carried))
    field = np.where(k < 16, out["value"], out["value_hi"])
    sizes = np.where(fetch, (field >> (np.uint64(4) * (k % np.uint64(16)))) & np.uint64(0xF), 0)
    before = np.cumsum(sizes) - sizes  # bytes of all earlier rows' instructions
    offset = before - before[start]  # ... of the earlier instructions of the same group
    # A run starts at its vaddr; a run load/store's fetches end at its pc: the first is pc minus the others' sizes.
    last = start + np.maximum(carried.astype(np.int64), 1) - 1
    first = np.where(from_fused, out["pc"] - offset[last], out["vaddr"])
    phys = np.where(from_fused, out["flags"] & L.RF_RUN_PADDR, out["flags"] & L.RF_PADDR) != 0
    paddr0 = np.where(from_fused, out["value_hi"], out["paddr"])
    pos0 = np.where(from_fused, out["pos"] - carried, out["pos"])
    icount0 = np.where(from_fused, out["icount"] + np.uint64(1) - carried, out["icount"])
    f = fetch
    out["vaddr"][f] = first[f] + offset[f]
    out["pc"][f] = out["vaddr"][f]
    out["paddr"][f] = np.where(phys[f], paddr0[f] + offset[f], 0)
    out["pos"][f] = pos0[f] + k[f]
    out["icount"][f] = icount0[f] + k[f]
    out["size"][f] = sizes[f]
    out["flags"][f] = np.where(phys[f], L.RF_PADDR, 0)
    out["kind"][f] = L.KIND_FETCH
    access = from_fused & ~fetch  # the run load/store itself, last of its group
    out["kind"][access] = np.where(out["kind"][access] == L.KIND_RUN_LOAD, L.KIND_LOAD, L.KIND_STORE)
    out["flags"][access] &= ~np.uint8(L.RF_RUN_PADDR)
    for name in ("value", "value_hi", "fetches"):
        out[name][f | access] = 0
    return out
