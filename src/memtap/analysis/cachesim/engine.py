"""Runs the native core over batches of records (or ops) and collects its counters into a Result."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from typing import Any

import numpy as np

from memtap.analysis.cachesim import native
from memtap.analysis.cachesim.config import Config, validate
from memtap.errors import MemtapError, UserError
from memtap.trace import layout

MISS_ROW = np.dtype([("pc", "<u8"), ("fetch", "<u8"), ("load", "<u8"), ("store", "<u8")])
RANGE_ROW = np.dtype([("start", "<u8"), ("fetch", "<u8"), ("load", "<u8"), ("store", "<u8")])
MESI = ("I", "S", "E", "M")
BATCH_ROWS = 1 << 20   # records per call into the core when reading a file: a few tens of MB of columns


class Simulator:
    """One simulated hierarchy; feed it record batches (or op arrays) in order, then take result()."""

    def __init__(self, config: Config, vcpus: int = 1) -> None:
        self.config = validate(config)
        self._lib = native.lib()
        cfgs = (native.LevelCfg * len(config.levels))()
        for c, lv in zip(cfgs, config.levels, strict=True):
            c.sets, c.ways, c.line = lv.sets, lv.assoc, lv.line
            c.repl, c.side = native.REPL_CODES[lv.replacement], native.SIDE_CODES[lv.side]
            c.write_back, c.write_allocate = lv.write_back, lv.write_allocate
            c.inclusive, c.shared = lv.inclusive, lv.shared
        opt = native.Options(seed=config.seed, range_bits=config.range_bits, split_lines=config.split_lines,
                             compat=config.semantics == "pycachesim", classify=config.classify,
                             track=config.track,
                             reset_marker=-1 if config.reset_marker is None else config.reset_marker)
        self._sim = self._lib.ms_new(cfgs, len(cfgs), ctypes.byref(opt))
        if not self._sim:
            raise MemtapError("cache simulator: out of memory building the hierarchy")
        self._kind_to_op = native.kind_to_op()
        self._use_paddr = int(config.address == "physical")
        self._logging = False
        self.vcpus = 0
        self.records = 0
        self.ensure_vcpus(vcpus)

    def ensure_vcpus(self, n: int) -> None:
        """Private caches for vCPUs 0..n-1 (created as vCPUs appear in the input)."""
        if n > self.vcpus:
            if n > 65536 or self._lib.ms_ensure_vcpus(self._sim, n):
                raise MemtapError(f"cache simulator: out of memory for {n} vCPUs")
            self.vcpus = n

    def log_memory(self) -> None:
        """From now on, keep every read and write of main memory for ``feed``'s return value."""
        self._lib.ms_log_enable(self._sim, 1)
        self._logging = True

    def _take_log(self) -> np.ndarray:
        n = self._lib.ms_log_size(self._sim)
        if n == ctypes.c_size_t(-1).value:
            raise MemtapError("cache simulator: out of memory for the memory log")
        out = np.empty(n, native.MEMOP)
        self._lib.ms_log_take(self._sim, out.ctypes.data, n)
        return out

    def input_columns(self) -> list[str]:
        """The record columns this hierarchy reads (``Trace.columns`` names): paddr only with physical addresses,
        pc only for the miss maps."""
        return [n for n in native.COLUMNS
                if not (n == "paddr" and not self._use_paddr) and not (n == "pc" and not self.config.track)]

    def feed(self, batch: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | None:
        """Simulate one batch of records of every vCPU in global order: a layout.RECORD array, or columns as
        ``Trace.columns`` yields them (a dict of equal-length arrays; missing columns read as zeros). With
        ``log_memory``, returns the batch's reads and writes of main memory (native.MEMOP, index = the record's
        index in the batch), else None."""
        if isinstance(batch, dict):
            cols = {n: batch[n] for n in native.COLUMNS if n in batch}
        elif isinstance(batch, np.ndarray) and batch.dtype == layout.RECORD:
            cols = {n: batch[n] for n in native.COLUMNS}   # views into the records: their stride is the record's
        else:
            raise UserError("cache simulator: expected layout.RECORD records or a dict of record columns, got "
                            f"{getattr(batch, 'dtype', type(batch).__name__)}")
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise UserError("cache simulator: columns of different lengths")
        n = lengths.pop() if lengths else 0
        if not n:
            return np.empty(0, native.MEMOP) if self._logging else None
        spec = native.Columns()
        arrays = {}   # what the core reads, alive until it is done
        for name, arr in cols.items():
            arr = np.asarray(arr)
            if arr.dtype != native.COLUMNS[name] or arr.ndim != 1:
                arr = np.ascontiguousarray(arr, native.COLUMNS[name])
            arrays[name] = arr
            setattr(spec, name, native.Column(arr.ctypes.data, arr.strides[0]))
        done = 0
        logs = []
        while True:
            done = self._lib.ms_run_columns(self._sim, ctypes.byref(spec), done, n, self._kind_to_op.ctypes.data,
                                            self._use_paddr)
            if self._logging:
                logs.append(self._take_log())   # the core logs each record's row in the batch
            if done == n:
                break
            self.ensure_vcpus(int(arrays["vcpu"][done]) + 1)  # the core stopped at a vCPU new to it
        self.records += n
        return np.concatenate(logs) if self._logging else None

    def feed_ops(self, ops: np.ndarray) -> None:
        """Simulate an array of native.INPUT ops (see ops())."""
        ops = np.ascontiguousarray(ops, native.INPUT)
        if len(ops):
            self.ensure_vcpus(int(ops["vcpu"].max()) + 1)
            self._lib.ms_run_inputs(self._sim, ops.ctypes.data, len(ops))

    def state(self, level: str, vcpu: int, addr: int) -> str:
        """MESI state ('I', 'S', 'E', 'M') of addr's line in a level's cache as vCPU vcpu sees it."""
        li = [lv.name for lv in self.config.levels].index(level)
        return MESI[self._lib.ms_probe(self._sim, li, vcpu, addr)]

    def counters(self) -> np.ndarray:
        """The counters so far, without the miss maps: an array (levels + main memory, vCPUs, counter names in
        native.counter_names() order), cheap enough to take between intervals of a run."""
        names = native.counter_names()
        nl = len(self.config.levels)
        counts = np.zeros((nl + 1, self.vcpus, len(names)), np.uint64)
        for li in range(nl + 1):
            for v in range(self.vcpus):
                ptr = self._lib.ms_counters(self._sim, li, v)
                counts[li, v] = np.ctypeslib.as_array(ptr, (len(names),))
        return counts

    def result(self) -> Result:
        """A snapshot of every counter and miss map."""
        counts = self.counters()
        nops = len(native.op_codes())
        ops = np.array([np.ctypeslib.as_array(self._lib.ms_op_counts(self._sim, v), (nops,))
                        for v in range(self.vcpus)], np.uint64)
        maps = {}
        for li, lv in enumerate(self.config.levels):
            for which, dt in ((0, MISS_ROW), (1, RANGE_ROW)):
                n = self._lib.ms_map_size(self._sim, li, which)
                rows = np.zeros(n, dt)
                got = self._lib.ms_map_export(self._sim, li, which, rows.ctypes.data, n)
                rows = np.sort(rows[:got], order=dt.names[0])
                if which == 1:
                    rows["start"] <<= np.uint64(self.config.range_bits)
                maps[lv.name, which] = rows
        return Result(self.config, counts, ops, maps, self.records)

    def close(self) -> None:
        if self._sim:
            self._lib.ms_free(self._sim)
            self._sim = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_sim", None):
            self.close()


def ops(rows: Iterable[tuple]) -> np.ndarray:
    """An INPUT array from (op name, address, size[, vcpu[, pc]]) tuples: the synthetic input of tests."""
    codes = native.op_codes()
    items = list(rows)
    out = np.zeros(len(items), native.INPUT)
    for i, row in enumerate(items):
        op, addr, size, vcpu, pc = (*row, 0, 0)[:5]
        if op not in codes:
            raise UserError(f"unknown cache op {op!r} (ops: {', '.join(codes)})")
        out[i] = (addr, pc, size, vcpu, codes[op])
    return out


def simulate(batches: Iterable[np.ndarray | dict[str, np.ndarray]], config: Config, vcpus: int = 1) -> Result:
    """Simulate every batch in order: layout.RECORD records (a live ring, Trace.batches(order='pos')) or column
    dicts (Trace.columns(..., order='pos'))."""
    with Simulator(config, vcpus) as sim:
        for batch in batches:
            sim.feed(batch)
        return sim.result()


def simulate_trace(trace: Any, config: Config) -> Result:
    """Simulate a trace file in its global order, decoding only the record columns the hierarchy reads."""
    with Simulator(config, max(1, int(trace.info.get("smp_vcpus", 1)))) as sim:
        for cols in trace.columns(sim.input_columns(), order="pos", batch_rows=BATCH_ROWS):
            sim.feed(cols)
        return sim.result()


class Result:
    """Counters per level and vCPU, miss maps per level, op counts per vCPU. See the package docstring."""

    def __init__(self, config: Config, counts: np.ndarray, ops: np.ndarray, maps: dict, records: int) -> None:
        self.config = config
        self.levels = [lv.name for lv in config.levels]
        self.vcpus = counts.shape[1]
        self.records = records
        self._counts = counts
        self._ops = ops
        self._maps = maps
        self._names = {n: i for i, n in enumerate(native.counter_names())}

    def _index(self, level: str) -> int:
        if level not in self.levels:
            raise UserError(f"no cache level named {level!r} (levels: {', '.join(self.levels)})")
        return self.levels.index(level)

    def raw(self, level: str | None, vcpu: int | None = None) -> dict[str, int]:
        """The core's counters of a level (None: main memory), for one vCPU or summed over all."""
        li = len(self.levels) if level is None else self._index(level)
        rows = self._counts[li] if vcpu is None else self._counts[li, vcpu : vcpu + 1]
        return {n: int(rows[:, i].sum()) for n, i in self._names.items()}

    def level(self, level: str, vcpu: int | None = None) -> dict[str, Any]:
        """Per-level statistics: accesses, hits, misses, miss_rate, per kind, miss classes, traffic."""
        r = self.raw(level, vcpu)
        kinds = ("fetch", "load", "store", "wbfill")
        hits = sum(r[f"hits_{k}"] for k in kinds)
        misses = sum(r[f"misses_{k}"] for k in kinds)
        out: dict[str, Any] = {"accesses": hits + misses, "hits": hits, "misses": misses,
                               "miss_rate": misses / (hits + misses) if hits + misses else 0.0}
        for k in kinds[:3]:
            out[k] = {"accesses": r[f"hits_{k}"] + r[f"misses_{k}"], "misses": r[f"misses_{k}"]}
        if self.config.classify:
            for c in ("compulsory", "capacity", "conflict", "coherence"):
                out[c] = r[c]
        for c in ("writebacks", "evictions", "invalidations", "back_invalidations", "writeback_hits",
                  "writeback_misses", "prefetch_hits", "prefetch_misses", "zeroed", "cleaned", "discarded"):
            out[c] = r[c]
        out["fills_for_writebacks"] = r["hits_wbfill"] + r["misses_wbfill"]
        return out

    def memory(self, vcpu: int | None = None) -> dict[str, int]:
        """Traffic reaching main memory: line reads, and writes (write-backs plus written-through stores)."""
        r = self.raw(None, vcpu)
        return {"reads": sum(r[f"hits_{k}"] for k in ("fetch", "load", "store", "wbfill")),
                "writes": r["writeback_hits"] + r["write_hits"]}

    def ops(self, vcpu: int | None = None) -> dict[str, int]:
        """How many inputs of each op the core processed (records: fetch, load, store, marker, uncached)."""
        rows = self._ops if vcpu is None else self._ops[vcpu : vcpu + 1]
        return {n: int(rows[:, i].sum()) for n, i in native.op_codes().items() if n != "none"}

    def pycachesim_counts(self, level: str) -> dict[str, int]:
        """This level's counts as pycachesim names them (HIT, MISS, EVICT); equal to pycachesim's own under
        semantics = "pycachesim" (docs/cachesim.md says why they differ otherwise)."""
        r = self.raw(level)
        hits = sum(r[f"hits_{k}"] for k in ("fetch", "load", "store", "wbfill"))
        misses = sum(r[f"misses_{k}"] for k in ("fetch", "load", "store", "wbfill"))
        return {"HIT_count": hits - r["write_hits"], "MISS_count": misses + r["writeback_misses"],
                "EVICT_count": r["writebacks"]}

    def misses_by_pc(self, level: str) -> np.ndarray:
        """Misses at a level per PC of the access that caused them, split by kind; sorted by pc.
        A structured array (pc u8, fetch u8, load u8, store u8)."""
        return self._maps[self.levels[self._index(level)], 0].copy()

    def misses_by_range(self, level: str) -> np.ndarray:
        """Misses at a level per address range of 2**config.range_bits bytes (start u8, fetch, load, store)."""
        return self._maps[self.levels[self._index(level)], 1].copy()

    def top(self, level: str, n: int, by: str = "pc") -> np.ndarray:
        """The n rows of misses_by_pc (by='pc') or misses_by_range (by='range') with the most misses."""
        rows = self.misses_by_pc(level) if by == "pc" else self.misses_by_range(level)
        total = rows["fetch"] + rows["load"] + rows["store"]
        order = np.lexsort((rows[rows.dtype.names[0]], -total.astype(np.int64)))
        return rows[order[:n]]

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """Everything, JSON-ready: levels (total and per vCPU), memory, ops, and the top-N miss rows."""
        levels = []
        for lv in self.config.levels:
            entry = {"name": lv.name, "size": lv.size, "ways": lv.assoc, "line": lv.line, "sets": lv.sets,
                     "replacement": lv.replacement, "write_back": lv.write_back,
                     "write_allocate": lv.write_allocate, "inclusive": lv.inclusive, "shared": lv.shared,
                     "side": lv.side, "total": self.level(lv.name)}
            entry["vcpus"] = [self.level(lv.name, v) for v in range(self.vcpus)]
            entry["top_pcs"] = [_row(r) for r in self.top(lv.name, top, "pc")]
            entry["top_ranges"] = [_row(r) for r in self.top(lv.name, top, "range")]
            levels.append(entry)
        return {"config": self.config.name, "semantics": self.config.semantics, "vcpus": self.vcpus,
                "records": self.records, "ops": self.ops(), "levels": levels, "memory": self.memory(),
                "range_bytes": 1 << self.config.range_bits}


def _row(r: np.void) -> dict[str, int]:
    key = r.dtype.names[0]
    return {key: int(r[key]), "fetch": int(r["fetch"]), "load": int(r["load"]), "store": int(r["store"]),
            "total": int(r["fetch"]) + int(r["load"]) + int(r["store"])}
