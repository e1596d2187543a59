"""The report document's sections, each a JSON-ready dict computed from the aggregates (no trace reading here).

Every number a plot or table of the page shows is in these dicts; the page draws them as they are.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import numpy as np

from memtap import __version__
from memtap.analysis.coverage import coverage
from memtap.analysis.execution import ExecutionCounts
from memtap.analysis.profile import Row, build_profile, by_function, by_line
from memtap.analysis.symbols import Symbols
from memtap.report import native
from memtap.report.aggregate import TIME_AXIS_KINDS, Aggregates
from memtap.report.regions import Region
from memtap.trace import layout as L
from memtap.trace.reader import Trace

HEAT_ROWS = 128   # rows of one region's heatmap at most (cells are merged by powers of two)
PRIVS = ("user", "supervisor", "hypervisor", "machine", "unknown")
ACCESS_KINDS = ("fetch", "load", "store")


def _kind_counts(values: np.ndarray) -> dict[str, int]:
    """{kind name: count} for the kinds memtap defines, from a row of the core's per-kind counts."""
    return {name: int(values[code]) for code, name in enumerate(L.KIND_NAMES)}


def overview(trace: Trace, agg: Aggregates, selection: dict[str, Any], argv: list[str] | None) -> dict[str, Any]:
    """What was traced and how much of it: target, versions, command lines, records by kind, vCPU and privilege,
    the span of positions and instructions, whether the trace is complete."""
    rows = agg.tables[native.VCPUS]
    kinds = rows[:, 1: 1 + native.KINDS]
    vcpu = (rows[:, 0] >> np.uint64(8)).astype(np.int64)
    priv = (rows[:, 0] & np.uint64(0xFF)).astype(np.int64)
    by_vcpu = {}
    for v in np.unique(vcpu).tolist():
        m = vcpu == v
        hi = int(rows[m, 1 + native.KINDS].max())
        lo = int((~rows[m, 2 + native.KINDS]).min())
        by_vcpu[str(v)] = {"records": int(kinds[m].sum()), **_kind_counts(kinds[m].sum(axis=0)),
                           "icount_first": lo if hi else None, "icount_last": hi - 1 if hi else None}
    state = agg.state
    meta = trace.meta
    return {
        "trace": str(trace.path),
        "target": trace.arch,
        "qemu_version": meta.get("qemu_version"),
        "recorded_by": meta.get("memtap_version"),
        "reported_by": __version__,
        "qemu_command": shlex.join(meta["qemu_command"]) if meta.get("qemu_command") else None,
        "report_command": shlex.join(["memtap", *argv]) if argv is not None else None,
        "start_time": meta.get("start_time"),
        "complete": trace.complete,
        "truncated": trace.truncated,
        "events_recorded": trace.info.get("events"),
        "executed_insns": (trace.end or {}).get("executed_insns"),
        "selection": selection,
        "records": int(kinds.sum()),
        "by_kind": _kind_counts(kinds.sum(axis=0)),
        "by_vcpu": by_vcpu,
        "by_priv": {p: int(kinds[priv == i].sum()) for i, p in enumerate(PRIVS) if kinds[priv == i].sum()},
        "pos_range": [state["pos_min"], state["pos_max"]] if state["seen"] else None,
    }


def time_axis(agg: Aggregates) -> dict[str, Any] | None:
    """The time bins: bin i holds positions [(first_bin + i) << shift, (first_bin + i + 1) << shift); records of
    each kind per bin."""
    if agg.empty:
        return None
    s = agg.state
    shift = s["time_shift"]
    first = s["pos_min"] >> shift
    bins = (s["pos_max"] >> shift) - first + 1
    rows = agg.tables[native.TIME]
    idx = (rows[:, 0] - np.uint64(first)).astype(np.int64)
    by_kind = {}
    for code, name in enumerate(L.KIND_NAMES):
        col = np.zeros(bins, np.int64)
        col[idx] = rows[:, 1 + code].astype(np.int64)
        by_kind[name] = col.tolist()
    return {"shift": shift, "first_bin": first, "bins": bins, "by_kind": by_kind}


def _row_shift(span: int) -> int:
    shift = 0
    while ((span - 1) >> shift) + 1 > HEAT_ROWS:
        shift += 1
    return shift


def heatmap(agg: Aggregates, regions: list[Region], how: str) -> dict[str, Any] | None:
    """Per region: its cells (row, time bin, fetches, loads, stores), a row being 2**(addr_shift + row_shift)
    bytes from the region's first cell; a cell counts the accesses whose first byte it holds."""
    if agg.empty or not len(agg.tables[native.HEAT]):
        return None
    heat = agg.tables[native.HEAT]
    s = agg.state
    shift = s["addr_shift"]
    first_time = s["pos_min"] >> s["time_shift"]
    bins = (s["pos_max"] >> s["time_shift"]) - first_time + 1
    out = []
    for r in regions:
        m = (heat[:, 0] >= np.uint64(r.lo_bin)) & (heat[:, 0] <= np.uint64(r.hi_bin))
        rs = _row_shift(r.hi_bin - r.lo_bin + 1)
        row = ((heat[m, 0] - np.uint64(r.lo_bin)) >> np.uint64(rs)).astype(np.int64)
        col = (heat[m, 1] - np.uint64(first_time)).astype(np.int64)
        key, inv = np.unique(row * bins + col, return_inverse=True)
        sums = np.zeros((len(key), 3), np.uint64)
        np.add.at(sums, inv, heat[m, 2:5])
        out.append({
            "class": r.cls, "sections": r.label, "lo": r.lo_bin << shift, "hi": (r.hi_bin + 1) << shift,
            "lo_bin": r.lo_bin, "hi_bin": r.hi_bin, "row_shift": rs, "rows": ((r.hi_bin - r.lo_bin) >> rs) + 1,
            "row_bytes": 1 << (shift + rs),
            "accesses": {k: int(sums[:, i].sum()) for i, k in enumerate(ACCESS_KINDS)},
            "cells": {"row": (key // bins).tolist(), "bin": (key % bins).tolist(),
                      **{k: sums[:, i].tolist() for i, k in enumerate(ACCESS_KINDS)}},
        })
    return {"addr_shift": shift, "regions_how": how, "regions": out}


def events(agg: Aggregates) -> dict[str, Any]:
    """The records drawn on the time axis, per kind: the count, and the records themselves when few enough."""
    out = {}
    for name in TIME_AXIS_KINDS:
        ev = agg.events[name]
        entry: dict[str, Any] = {"recorded": name in L.KIND_CODES, "count": ev.count}
        rows = ev.drawn()
        if rows is not None:
            entry["drawn"] = [{"pos": int(r[0]), "vcpu": int(r[1]), **_event_fields(name, r)} for r in rows]
        out[name] = entry
    return out


def _event_fields(name: str, r: np.ndarray) -> dict[str, Any]:
    if name == "marker":
        return {"value": int(r[3])}
    if name == "exception":
        flags = int(r[4])
        return {"from": None if flags & L.RF_NOADDR else int(r[2]),
                "cause": int(r[3]) if flags & L.RF_VALUE else None, "interrupt": bool(flags & L.RF_INTERRUPT)}
    return {"value": int(r[3]), "vaddr": int(r[2])}


def _top(rows: np.ndarray, total: np.ndarray, top: int) -> np.ndarray:
    """The rows with the largest totals (ties: lowest key first)."""
    order = np.lexsort((rows[:, 0], -total.astype(np.int64)))
    return order[:top]


def unit_table(agg: Aggregates, table: int, shift: int, top: int) -> dict[str, Any]:
    """The hottest pages (table PAGES) or lines (LINES): touches by fetches, loads and stores; an access that
    straddles two units touches both. ``distinct_data`` counts the units loads or stores touched (memtap stats'
    footprint)."""
    rows = agg.tables[table]
    counts = rows[:, 1:4]
    total = counts.sum(axis=1)
    out_rows = []
    for i in _top(rows, total, top).tolist():
        r = {"address": int(rows[i, 0]) << shift, **{k: int(counts[i, j]) for j, k in enumerate(ACCESS_KINDS)},
             "total": int(total[i])}
        if table == native.PAGES:
            r["io"] = int(rows[i, 4])
        else:
            r["readers"] = members(int(rows[i, 4]))
            r["writers"] = members(int(rows[i, 5]))
        out_rows.append(r)
    return {"unit_bytes": 1 << shift, "distinct": len(rows),
            "distinct_data": int(np.count_nonzero(counts[:, 1] + counts[:, 2])),
            "distinct_fetched": int(np.count_nonzero(counts[:, 0])), "rows": out_rows}


def members(mask: int) -> list[int]:
    """The vCPUs of a line's reader or writer mask."""
    return [v for v in range(64) if mask >> v & 1]


def execution_counts(agg: Aggregates) -> ExecutionCounts:
    """The per-instruction counts of memtap.analysis.execution, from the core's pc table."""
    pcs = agg.tables[native.PCS]
    return ExecutionCounts(np.ascontiguousarray(pcs[:, 0]), np.zeros(len(pcs), np.uint8),
                           *(np.ascontiguousarray(pcs[:, k]) for k in (1, 2, 3)))


def profile_rows(rows: list[Row], names: tuple[str, ...], sort_by: int, top: int) -> list[dict[str, Any]]:
    """The top rows of a profile table by one of its events (rows where it is 0 left out), named fields."""
    rows = sorted((r for r in rows if r.values[sort_by]), key=lambda r: (-r.values[sort_by], r.name))
    return [{"name": r.name, "where": r.where, **dict(zip(names, r.values, strict=True))} for r in rows[:top]]


def profiles(counts: ExecutionCounts, symbols: Symbols, top: int) -> dict[str, Any]:
    """Executed instructions, loads and stores per function and per source line (memtap profile's rows)."""
    prof = build_profile(counts, symbols)
    names = ("executed", "loads", "stores")
    return {"functions": {"rows": profile_rows(by_function(prof), names, 0, top)},
            "source_lines": {"rows": profile_rows(by_line(prof), names, 0, top)}}


def coverage_summary(counts: ExecutionCounts, symbols: Symbols) -> dict[str, Any]:
    """Per source file: lines with code and executed, functions and functions entered (memtap coverage)."""
    report = coverage(counts, symbols)
    files = []
    for f in report.files:
        lines = list(f.lines.values())
        files.append({"path": f.path, "file": os.path.basename(f.path), "lines": len(lines),
                      "lines_hit": sum(c > 0 for c in lines), "functions": len(f.functions),
                      "functions_hit": sum(fn.count > 0 for fn in f.functions)})
    lf, lh, fnf, fnh = report.totals()
    return {"files": files, "totals": {"lines": lf, "lines_hit": lh, "functions": fnf, "functions_hit": fnh}}
