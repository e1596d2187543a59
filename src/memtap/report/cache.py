"""Cache miss rates over time: the cache simulator run over the trace in its global order, its counters read at
every time-bin boundary of the report, so each level's accesses and misses are known per bin."""

from __future__ import annotations

from typing import Any

import numpy as np

from memtap.analysis import cachesim
from memtap.analysis.cachesim import native as cache_native
from memtap.analysis.cachesim.config import Config
from memtap.analysis.execution import ExecutionCounts
from memtap.analysis.profile import build_profile, by_function, by_line
from memtap.analysis.symbols import Symbols
from memtap.report.sections import profile_rows

_KINDS = ("fetch", "load", "store", "wbfill")   # what Result.level() counts as a level's accesses


class IntervalSimulation:
    """Feeds record batches in global order to a simulator and keeps each level's cumulative accesses and misses
    at the end of every time bin (bins of 2**time_shift positions, numbered from first_bin)."""

    def __init__(self, config: Config, vcpus: int, time_shift: int, first_bin: int, bins: int) -> None:
        self.sim = cachesim.Simulator(config, vcpus)
        self.shift = np.uint64(time_shift)
        self.first = first_bin
        self.bins = bins
        names = cache_native.counter_names()
        self._hits = [names.index(f"hits_{k}") for k in _KINDS]
        self._misses = [names.index(f"misses_{k}") for k in _KINDS]
        nl = len(config.levels)
        self.accesses = np.zeros((bins, nl), np.uint64)   # cumulative at the end of each bin
        self.misses = np.zeros((bins, nl), np.uint64)
        self._bin = 0          # the bin whose records are being fed

    def _close_bins(self, upto: int) -> None:
        """Record the counters as the state at the end of bins self._bin .. upto - 1."""
        c = self.sim.counters()[:-1].sum(axis=1)   # levels x counters, summed over vCPUs; main memory dropped
        acc = c[:, self._hits].sum(axis=1) + c[:, self._misses].sum(axis=1)
        self.accesses[self._bin: upto] = acc
        self.misses[self._bin: upto] = c[:, self._misses].sum(axis=1)
        self._bin = upto

    def feed(self, batch: np.ndarray) -> None:
        if not len(batch):
            return
        tb = (batch["pos"] >> self.shift).astype(np.int64) - self.first
        cuts = np.flatnonzero(np.diff(tb)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(batch)], strict=True):
            b = int(tb[lo])
            if b > self._bin:
                self._close_bins(b)
            self.sim.feed(batch[lo:hi])

    def finish(self) -> tuple[cachesim.Result, np.ndarray, np.ndarray]:
        """The whole run's result and the accesses and misses per bin and level (not cumulative)."""
        self._close_bins(self.bins)
        res = self.sim.result()
        self.sim.close()
        per = lambda x: np.diff(x, axis=0, prepend=np.zeros((1, x.shape[1]), np.uint64))  # noqa: E731
        return res, per(self.accesses), per(self.misses)


def cache_section(res: cachesim.Result, accesses: np.ndarray, misses: np.ndarray, counts: ExecutionCounts,
                  symbols: Symbols | None, top: int) -> dict[str, Any]:
    """Miss rates per level and time bin, each level's totals, and the functions, source lines (with ELF files)
    or PCs with the most misses at the first data level and at the last level."""
    config = res.config
    levels = []
    for i, lv in enumerate(config.levels):
        total = res.level(lv.name)
        levels.append({"name": lv.name, "size": lv.size, "ways": lv.assoc, "line": lv.line, "side": lv.side,
                       "shared": lv.shared, "accesses": total["accesses"], "misses": total["misses"],
                       "per_bin": {"accesses": accesses[:, i].tolist(), "misses": misses[:, i].tolist()}})
    data_side = [lv.name for lv in config.levels if lv.side in ("unified", "data")]
    chosen = list(dict.fromkeys([*data_side[:1], config.levels[-1].name]))
    extra = {}
    for name in chosen:
        rows = res.misses_by_pc(name)
        extra[name] = (rows["pc"], rows["fetch"] + rows["load"] + rows["store"])
    out: dict[str, Any] = {"config": config.name, "levels": levels, "top_levels": chosen}
    if symbols is not None:
        prof = build_profile(counts, symbols, extra)
        names = ("executed", "loads", "stores", *(f"misses_{n}" for n in chosen))
        out["functions"] = {n: profile_rows(by_function(prof), names, 3 + i, top) for i, n in enumerate(chosen)}
        out["source_lines"] = {n: profile_rows(by_line(prof), names, 3 + i, top) for i, n in enumerate(chosen)}
    out["pcs"] = {n: [{"pc": int(r["pc"]), "fetch": int(r["fetch"]), "load": int(r["load"]),
                       "store": int(r["store"]), "misses": int(r["fetch"]) + int(r["load"]) + int(r["store"])}
                      for r in res.top(n, top, "pc")] for n in chosen}
    return out
