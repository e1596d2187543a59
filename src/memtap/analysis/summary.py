"""Summary statistics of a trace, computed in one streaming pass over record batches.

Memory grows with the address footprint (distinct lines and pages) and the number of vCPUs, not with the number
of records, so stats works on traces far larger than RAM.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memtap.trace import layout as L
from memtap.trace.reader import DEFAULT_BATCH_SIZE, Trace, priv_index

LINE_SHIFT = 6  # 64-byte cache lines
PAGE_SHIFT = 12  # 4 KiB pages
_PRIVS = ("user", "supervisor", "hypervisor", "machine", "unknown")


class Distinct:
    """Count distinct values (uint64, or records of a structured dtype) incrementally: unique per batch, merge
    occasionally."""

    def __init__(self, dtype: np.dtype | type = np.uint64) -> None:
        self.merged = np.empty(0, dtype)
        self.parts: list[np.ndarray] = []
        self.pending = 0

    def add(self, values: np.ndarray) -> None:
        if len(values):
            u = np.unique(values)
            self.parts.append(u)
            self.pending += len(u)
            if self.pending > max(1 << 20, len(self.merged)):
                self._merge()

    def _merge(self) -> None:
        if self.parts:
            self.merged = np.unique(np.concatenate([self.merged, *self.parts]))
            self.parts, self.pending = [], 0

    def values(self) -> np.ndarray:
        """The distinct values, sorted."""
        self._merge()
        return self.merged

    def count(self) -> int:
        return len(self.values())


def _spanned(addr: np.ndarray, size: np.ndarray, shift: int) -> np.ndarray:
    """Units (lines/pages) touched by accesses, counting both ends of an access that straddles a boundary."""
    first = addr >> np.uint64(shift)
    last = (addr + np.maximum(size.astype(np.uint64), 1) - np.uint64(1)) >> np.uint64(shift)
    straddle = last != first
    return np.concatenate([first, last[straddle]]) if straddle.any() else first


def compute_stats(trace: Trace, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """Counts by kind, vCPU, size and privilege; data footprint; instruction counts; markers.

    The result is JSON-ready (dict keys are strings) so ``memtap stats --json`` can dump it as is.
    """
    by_kind = np.zeros(len(L.KIND_NAMES), np.int64)
    by_priv = np.zeros(len(_PRIVS), np.int64)
    by_size = np.zeros(256, np.int64)
    vcpu_kind: dict[int, np.ndarray] = {}
    vcpu_icount: dict[int, int] = {}
    marker_values: dict[int, int] = {}
    first_markers: list[dict[str, int]] = []
    lines, pages, ppages = Distinct(), Distinct(), Distinct()
    va_min: int | None = None
    va_max: int | None = None
    io = with_paddr = 0
    pos_min: int | None = None
    pos_max: int | None = None

    for b in trace.batches(batch_size=batch_size):
        kind = b["kind"]
        by_kind += np.bincount(kind, minlength=len(L.KIND_NAMES))[: len(L.KIND_NAMES)]
        by_priv += np.bincount(priv_index(b["priv"]), minlength=len(_PRIVS))
        lo, hi = int(b["pos"].min()), int(b["pos"].max())
        pos_min = lo if pos_min is None else min(pos_min, lo)
        pos_max = hi if pos_max is None else max(pos_max, hi)
        for v in np.unique(b["vcpu"]):
            m = b["vcpu"] == v
            v = int(v)
            counts = np.bincount(kind[m], minlength=len(L.KIND_NAMES))[: len(L.KIND_NAMES)]
            vcpu_kind[v] = vcpu_kind.get(v, np.zeros(len(L.KIND_NAMES), np.int64)) + counts
            vcpu_icount[v] = max(vcpu_icount.get(v, 0), int(b["icount"][m].max()))
        data = (kind == L.KIND_LOAD) | (kind == L.KIND_STORE)
        if data.any():
            d = b[data]
            by_size += np.bincount(d["size"], minlength=256)
            va, sz = d["vaddr"], d["size"]
            lines.add(_spanned(va, sz, LINE_SHIFT))
            pages.add(_spanned(va, sz, PAGE_SHIFT))
            va_min = int(va.min()) if va_min is None else min(va_min, int(va.min()))
            va_max = int(va.max()) if va_max is None else max(va_max, int(va.max()))
            io += int(np.count_nonzero(d["flags"] & L.RF_IO))
            pv = (d["flags"] & L.RF_PADDR) != 0
            with_paddr += int(np.count_nonzero(pv))
            if pv.any():
                ppages.add(_spanned(d["paddr"][pv], sz[pv], PAGE_SHIFT))
        mk = kind == L.KIND_MARKER
        if mk.any():
            m = b[mk]
            for val in m["value"].tolist():
                marker_values[val] = marker_values.get(val, 0) + 1
            for r in m[: max(0, 100 - len(first_markers))].tolist():
                first_markers.append({"pos": r[0], "vcpu": r[6], "icount": r[1], "value": r[5]})

    names = L.KIND_NAMES
    return {
        "path": str(trace.path),
        "target": trace.arch,
        "smp_vcpus": trace.info.get("smp_vcpus"),
        "complete": trace.complete,
        "truncated": trace.truncated,
        "records": int(by_kind.sum()),
        "pos_range": None if pos_min is None else [pos_min, pos_max],
        "by_kind": {n: int(c) for n, c in zip(names, by_kind, strict=True)},
        "by_vcpu": {
            str(v): {"records": int(c.sum()), **{n: int(x) for n, x in zip(names, c, strict=True)},
                     "max_icount": vcpu_icount[v]}
            for v, c in sorted(vcpu_kind.items())
        },
        "by_size": {str(s): int(c) for s, c in enumerate(by_size) if c},
        "by_priv": {p: int(c) for p, c in zip(_PRIVS, by_priv, strict=True) if c},
        "instructions": {
            "fetch_records": int(by_kind[L.KIND_FETCH]),
            "max_icount_by_vcpu": {str(v): c for v, c in sorted(vcpu_icount.items())},
        },
        "footprint": {
            "data_accesses": int(by_kind[L.KIND_LOAD] + by_kind[L.KIND_STORE]),
            "io_accesses": io,
            "accesses_with_paddr": with_paddr,
            "lines_64b": lines.count(),
            "pages_4k": pages.count(),
            "physical_pages_4k": ppages.count(),
            "vaddr_min": va_min,
            "vaddr_max": va_max,
        },
        "markers": {
            "count": int(by_kind[L.KIND_MARKER]),
            "by_value": {str(k): v for k, v in sorted(marker_values.items())},
            "first": first_markers,
        },
        "end": trace.end,
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """Plain aligned table: first column left-aligned, the rest right-aligned."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for r in cells:
        row = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        out.append("  ".join(row).rstrip())
    return out


def format_stats(s: dict[str, Any]) -> str:
    """Human-readable report of ``compute_stats`` output."""
    hexa = "-" if s["footprint"]["vaddr_min"] is None else None
    state = "complete" if s["complete"] else "TRUNCATED (no END chunk: the writer did not finish)"
    lines = [
        f"trace       {s['path']}",
        f"target      {s['target'] or 'unknown'}, {s['smp_vcpus'] if s['smp_vcpus'] is not None else '?'} vCPUs",
        f"status      {state}",
        f"records     {s['records']}" + (f"  (pos {pr[0]}..{pr[1]})" if (pr := s["pos_range"]) else ""),
        "",
    ]
    lines += _table(["kind", "records"], [[k, c] for k, c in s["by_kind"].items()])
    lines.append("")
    lines += _table(["vcpu", "records", *L.KIND_NAMES, "max icount"],
                    [[v, d["records"], *(d[k] for k in L.KIND_NAMES), d["max_icount"]]
                     for v, d in s["by_vcpu"].items()])
    lines.append("")
    if s["by_size"]:
        lines += _table(["data size", "accesses"], [[f"{k} B", c] for k, c in s["by_size"].items()])
        lines.append("")
    if s["by_priv"]:
        lines += _table(["privilege", "records"], [[k, c] for k, c in s["by_priv"].items()])
        lines.append("")
    fp = s["footprint"]
    span = hexa or f"0x{fp['vaddr_min']:x} .. 0x{fp['vaddr_max']:x}"
    lines += _table(["footprint (data)", ""], [
        ["accesses", fp["data_accesses"]],
        ["MMIO accesses", fp["io_accesses"]],
        ["with physical address", fp["accesses_with_paddr"]],
        ["distinct 64 B lines", fp["lines_64b"]],
        ["distinct 4 KiB pages", fp["pages_4k"]],
        ["distinct 4 KiB physical pages", fp["physical_pages_4k"]],
        ["vaddr span", span],
    ])
    mk = s["markers"]
    lines.append("")
    lines.append(f"markers     {mk['count']}")
    if mk["by_value"]:
        lines += ["  " + ln for ln in _table(["value", "count"], [[k, c] for k, c in mk["by_value"].items()])]
    return "\n".join(lines)
