"""Builds the report document: one pass over the trace in file order for every count, and, only when cache
misses or line transfers are asked for, one pass in global order for them. The document is JSON-ready; the
page (render.py) draws exactly its numbers, and ``memtap report --json`` writes it as is.

Whatever cannot be shown (no records, one vCPU, no ELF, no fetch records, no --cache, a truncated trace) is
named in ``unavailable`` (section -> why) or ``notes``, and the page says so where the section would be.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memtap.analysis.cachesim import Config
from memtap.analysis.execution import ExecutionCounts, has_fetches
from memtap.analysis.sharing import Transfers
from memtap.analysis.sharing.native import MAX_VCPUS
from memtap.analysis.symbols import ElfSpec, Symbols, Warn, default_warn
from memtap.errors import UserError
from memtap.report import native, sections
from memtap.report.aggregate import Aggregates, Selection, aggregate
from memtap.report.cache import IntervalSimulation, cache_section
from memtap.report.regions import HOW_CLUSTERS, HOW_ELF, elf_sections, find_regions
from memtap.trace.reader import Trace

FORMAT = "memtap-report"
VERSION = 1
TOP = 100   # rows of each table


@dataclass
class Options:
    """What a report covers and adds: ELF files, a cache hierarchy to simulate, a selection of records."""

    elf: list[ElfSpec] = field(default_factory=list)
    cache: Config | None = None
    selection: Selection = field(default_factory=Selection)
    top: int = TOP
    argv: list[str] | None = None


@dataclass
class Timing:
    """Seconds spent: the whole build, the file-order pass and the ordered pass (wall time); the file-order
    pass's CPU time in this thread, and of it the aggregation's (the rest is reading the records)."""

    total: float = 0.0
    first_pass: float = 0.0
    first_pass_cpu: float = 0.0
    aggregating_cpu: float = 0.0
    ordered_pass: float = 0.0


def build(trace: Trace, opts: Options, warn: Warn | None = None, timing: Timing | None = None) -> dict[str, Any]:
    """The report document of a trace."""
    start = time.perf_counter()
    warn = warn or default_warn()
    if trace.counts_mode:
        raise UserError(f"{trace.path} was recorded with --counts: it holds counters, not records; a report needs "
                        "records (memtap stats, coverage and profile read counting-mode traces)")
    symbols = Symbols(opts.elf, trace.arch, warn) if opts.elf else None
    agg = aggregate(trace, opts.selection)
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    doc["overview"] = sections.overview(trace, agg, _selection_json(opts.selection), opts.argv)
    if trace.truncated:
        notes.append("The trace is truncated (no END chunk: the recording did not finish); the report covers its "
                     "records up to the last whole chunk.")
    if agg.empty:
        why = "the trace holds no records" if opts.selection == Selection() else "no record matches the selection"
        notes.append(f"Nothing to plot: {why}.")
    doc["time"] = sections.time_axis(agg)
    regions = find_regions(agg.tables[native.HEAT], agg.tables[native.PAGES], agg.state["addr_shift"],
                           elf_sections(opts.elf)) if not agg.empty else []
    doc["heatmap"] = sections.heatmap(agg, regions, HOW_ELF if opts.elf else HOW_CLUSTERS)
    if doc["heatmap"] is None:
        unavailable["heatmap"] = "no fetch, load or store records" + ("" if agg.empty else " in the selection")
    doc["events"] = sections.events(agg)
    doc["pages"] = sections.unit_table(agg, native.PAGES, 12, opts.top)
    doc["lines"] = sections.unit_table(agg, native.LINES, 6, opts.top)
    counts = sections.execution_counts(agg)
    fetched = bool(doc["overview"]["by_kind"]["fetch"])
    doc["functions"] = doc["source_lines"] = doc["coverage"] = None
    if symbols is None:
        for k in ("functions", "source_lines", "coverage"):
            unavailable[k] = "no --elf: naming functions and source lines needs the guest's ELF file(s)"
    else:
        symbols.note_resolved(counts.pc)
        symbols.warn_unresolved()
        doc.update(sections.profiles(counts, symbols, opts.top))
        if fetched:
            doc["coverage"] = sections.coverage_summary(counts, symbols)
        else:
            unavailable["coverage"] = ("no instruction fetch records " + _events_note(trace) +
                                       ": coverage needs them")
    if timing is not None:
        timing.first_pass, timing.first_pass_cpu = agg.seconds_total, agg.cpu_total
        timing.aggregating_cpu = agg.cpu_aggregating
    t0 = time.perf_counter()
    _ordered(trace, opts, agg, counts, symbols, doc, unavailable)
    if timing is not None:
        timing.ordered_pass = time.perf_counter() - t0
        timing.total = time.perf_counter() - start
    doc["unavailable"] = unavailable
    doc["notes"] = notes
    return doc


def _events_note(trace: Trace) -> str:
    events = trace.info.get("events")
    return f"(recorded with --events {','.join(events)})" if events and not has_fetches(trace) else "in the selection"


def _selection_json(sel: Selection) -> dict[str, Any]:
    return {"pos_range": list(sel.pos_range) if sel.pos_range else None,
            "vcpus": list(sel.vcpus) if sel.vcpus is not None else None}


def _ordered(trace: Trace, opts: Options, agg: Aggregates, counts: ExecutionCounts, symbols: Symbols | None,
             doc: dict[str, Any], unavailable: dict[str, str]) -> None:
    """The pass in global order: cache simulation by time bin, and line transfers between vCPUs."""
    consumers: list[Any] = []
    vcpus = [int(v) for v in doc["overview"]["by_vcpu"]]
    doc["cache"] = doc["sharing"] = None
    sim = xfer = None
    time_axis = doc["time"]
    config = opts.cache
    if config is None:
        unavailable["cache"] = "no --cache: give a cache preset or a TOML hierarchy to see miss rates"
    elif time_axis is None:
        unavailable["cache"] = "no records to simulate"
    else:
        sim = IntervalSimulation(config, max(vcpus) + 1, time_axis["shift"], time_axis["first_bin"],
                                 time_axis["bins"])
        consumers.append(sim)
    if len(vcpus) < 2:
        unavailable["sharing"] = (f"{'one vCPU' if vcpus else 'no vCPU'} in the selection: no line moves "
                                  "between vCPUs")
    elif max(vcpus) >= MAX_VCPUS:
        unavailable["sharing"] = f"vCPU {max(vcpus)}: line transfers are counted for vCPUs 0-{MAX_VCPUS - 1} only"
    else:
        xfer = Transfers(1 << native.LINE_SHIFT)
        consumers.append(xfer)
    if consumers:
        for batch in trace.batches(order="pos", batch_size=1 << 20, **opts.selection.kwargs()):
            for c in consumers:
                c.feed(batch)
    if sim is not None:
        res, acc, miss = sim.finish()
        doc["cache"] = cache_section(res, acc, miss, counts, symbols, opts.top)
    if xfer is not None:
        doc["sharing"] = _sharing(agg.tables[native.LINES], xfer, vcpus, opts.top)


def _sharing(table: np.ndarray, xfer: Transfers, vcpus: list[int], top: int) -> dict[str, Any]:
    """The vCPU x vCPU transfer matrix and the lines more than one vCPU loaded or stored (by the sharing
    analysis), most transfers first, with their loads, stores, readers and writers from the report's line
    table (the same 64-byte lines of virtual addresses)."""
    matrix = xfer.matrix()
    shared = xfer.lines()
    at = np.searchsorted(table[:, 0], shared[:, 0] >> np.uint64(native.LINE_SHIFT))
    rows = []
    for (address, transfers), r in zip(shared.tolist(), table[at].tolist(), strict=True):
        rows.append({"address": address, "loads": r[2], "stores": r[3], "readers": sections.members(r[4]),
                     "writers": sections.members(r[5]), "transfers": transfers})
    rows.sort(key=lambda r: (-r["transfers"], -len(set(r["readers"]) | set(r["writers"])), r["address"]))
    return {"rule": "mtrace", "implementation": "memtap.analysis.sharing", "vcpus": vcpus,
            "matrix": [[int(matrix[a, b]) for b in vcpus] for a in vcpus],
            "transfers": int(matrix.sum()), "shared_lines": len(rows), "lines": rows[:top]}
