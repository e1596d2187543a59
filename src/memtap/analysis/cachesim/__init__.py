"""memtap's cache-hierarchy simulator: a native core driven by whole batches of trace records.

    >>> import memtap
    >>> from memtap.analysis import cachesim
    >>> cfg = cachesim.preset("zen4")                       # or cachesim.load_config("my.toml")
    >>> res = cachesim.simulate_trace(memtap.open("run.trace"), cfg)    # reads only the columns it needs
    >>> res.levels                                          # ['L1I', 'L1D', 'L2', 'L3']
    >>> res.level("L1D")["miss_rate"], res.level("L2", vcpu=0)["misses"]
    >>> res.misses_by_pc("L1D")                             # structured array, sorted by pc

API
---
``simulate_trace(trace, config) -> Result``
    Runs a trace file in its global order through a fresh hierarchy, asking the reader only for the record
    columns the hierarchy reads (``Simulator.input_columns()``: kind, vaddr, size, vcpu, pc, flags, value, and
    paddr with physical addresses).
``simulate(batches, config, vcpus=1) -> Result``
    Runs every batch, in global order, through a fresh hierarchy: numpy arrays of ``memtap.layout.RECORD`` (a
    live ring, ``Trace.batches(order="pos")``) or dicts of record columns (``Trace.columns(..., order="pos")``).
``Simulator(config, vcpus=1)``
    The same, step by step: ``feed(batch)`` (records or columns), ``input_columns()``, ``feed_ops(ops)`` (an
    array of ``native.INPUT``: op codes the trace has no kind for yet, such as cache maintenance),
    ``state(level, vcpu, addr)`` ('I', 'S', 'E' or 'M'),
    ``result()``. ``ops([(op, addr, size, vcpu, pc), ...])`` builds such an array; op names are
    fetch, load, store, marker, uncached, prefetch, zero, clean, invalidate, flush, clean_all,
    invalidate_all, flush_all.
``Result``
    ``levels``: level names from the core outwards. ``vcpus``: vCPUs seen.
    ``level(name, vcpu=None) -> dict``: accesses, hits, misses, miss_rate, fetch/load/store {accesses, misses},
    compulsory/capacity/conflict/coherence (with ``classify``), writebacks, evictions, invalidations,
    back_invalidations, writeback_hits, writeback_misses, prefetch_hits, prefetch_misses, zeroed, cleaned,
    discarded; summed over vCPUs when vcpu is None (a shared level's counts are split by requesting vCPU).
    ``misses_by_pc(name)``: structured array ``(pc u8, fetch u8, load u8, store u8)``, one row per PC with a
    miss at that level, sorted by pc; a miss at a lower level is charged to the PC of the access that caused
    it. ``misses_by_range(name)``: ``(start u8, fetch, load, store)`` per ``2**config.range_bits`` bytes.
    ``top(name, n, by="pc"|"range")``, ``memory()``, ``ops()``, ``pycachesim_counts(name)``, ``to_dict(top)``.
``Config``, ``Level``, ``load_config(path)``, ``preset(name)``, ``preset_names()``, ``validate(cfg)``
    The hierarchy description (docs/cachesim.md has the TOML format and every semantic choice).

Memory use is fixed by the hierarchy, except for the miss maps (bounded by the distinct PCs and ranges that
miss) and, with ``classify``, the set of lines seen (bounded by the trace's footprint); never by its length.
"""

from __future__ import annotations

from memtap.analysis.cachesim.config import Config, Level, load_config, preset, preset_names, validate, with_options
from memtap.analysis.cachesim.engine import Result, Simulator, ops, simulate, simulate_trace

__all__ = ["Config", "Level", "Result", "Simulator", "load_config", "ops", "preset", "preset_names",
           "simulate", "simulate_trace", "validate", "with_options"]
