"""The sharing report as one JSON-ready dict (``memtap sharing --json`` prints it as is), and its text form:
a summary, then perf c2c's two levels (lines ranked by transfers, then each line's offsets), then the shared
addresses."""

from __future__ import annotations

from typing import Any

import numpy as np

from memtap.analysis.datasyms import DataSymbols
from memtap.analysis.sharing.lines import Line, SharedAddress
from memtap.analysis.sharing.passes import Passes
from memtap.analysis.symbols import Symbols


class Namer:
    """Names for data addresses and pcs from the optional ELF files; None where nothing is known."""

    def __init__(self, data: DataSymbols | None = None, code: Symbols | None = None) -> None:
        self.data, self.code = data, code
        self._functions: dict[int, str | None] = {}

    def prepare(self, pcs: np.ndarray) -> None:
        """Resolve many pcs at once (one table lookup for all of them)."""
        if self.code is not None and len(pcs):
            pcs = np.unique(np.asarray(pcs, np.uint64))
            for pc, fn in zip(pcs.tolist(), self.code.function_index(pcs).tolist(), strict=True):
                self._functions[pc] = self.code.name_at(pc, fn) if fn >= 0 else None

    def line_symbols(self, vaddr: int | None, size: int) -> list[str]:
        return self.data.names(vaddr, vaddr + size) if self.data and vaddr is not None else []

    def symbol(self, vaddr: int | None) -> str | None:
        return self.data.name_at(vaddr) if self.data and vaddr is not None else None

    def field(self, vaddr: int | None) -> str | None:
        return self.data.field_at(vaddr) if self.data and vaddr is not None else None

    def function(self, pc: int) -> str | None:
        if pc not in self._functions:
            self.prepare(np.array([pc], np.uint64))
        return self._functions.get(pc)


def line_entry(ln: Line, namer: Namer, line_size: int) -> dict[str, Any]:
    """The line object of the JSON form, exactly the keys scripts rely on."""
    return {"address": ln.address, "kind": ln.kind, "readers": ln.readers, "writers": ln.writers,
            "threads": ln.threads, "transfers": ln.transfers,
            "symbols": namer.line_symbols(ln.vaddr, line_size)}


def line_detail(ln: Line, namer: Namer) -> dict[str, Any]:
    """The bytes each sharer wrote and read, and the per-offset rows (with pcs) of one line."""
    offsets = []
    for o in ln.offsets:
        va = None if ln.vaddr is None else ln.vaddr + o.offset
        offsets.append({
            "offset": o.offset, "sharer": o.sharer, "vcpus": sorted(o.vcpus), "sizes": sorted(o.sizes),
            "reads": o.reads, "writes": o.writes, "symbol": namer.symbol(va), "field": namer.field(va),
            "code": [{"pc": c.pc, "function": namer.function(c.pc), "reads": c.reads, "writes": c.writes}
                     for c in sorted(o.code.values(), key=lambda c: c.pc)],
        })
    return {"address": ln.address, "vaddr": ln.vaddr, "aliased": ln.aliased,
            "written": [{"sharer": k, "ranges": [list(r) for r in v]} for k, v in ln.written.items()],
            "read": [{"sharer": k, "ranges": [list(r) for r in v]} for k, v in ln.read.items()],
            "offsets": offsets}


def address_entry(a: SharedAddress, namer: Namer) -> dict[str, Any]:
    return {"address": a.address, "vaddr": a.vaddr, "symbol": namer.symbol(a.vaddr), "field": namer.field(a.vaddr),
            "accesses": a.total, "by_sharer": [{"sharer": k, "accesses": v} for k, v in a.accesses.items()]}


def summary(p: Passes, lines: list[Line], addresses: list[SharedAddress]) -> dict[str, Any]:
    c = p.counters
    kinds = {k: sum(1 for ln in lines if ln.kind == k) for k in ("false", "true", "read")}
    return {"data_accesses": c["data"], "skipped_io": c["io"], "skipped_no_paddr": c["no_paddr"],
            "lines": p.lines, "lines_multi_vcpu": p.multi_vcpu_lines, "shared_lines": len(lines), **kinds,
            "transfers": c["transfers"], "transfers_on_shared_lines": sum(ln.transfers for ln in lines),
            "transfer_records": c["transfer_records"], "shared_addresses": len(addresses)}


def movement(c: dict[str, int], trace_records: int | None) -> dict[str, Any]:
    """How much of the trace mtrace's movement recording mode would keep, from the core's counters."""
    kept = c["movement_records"]
    return {"trace_records": trace_records, "data_accesses": c["data"], "movement_records": kept,
            "transfer_records": c["transfer_records"],
            "kept_of_data": round(kept / c["data"], 6) if c["data"] else None,
            "kept_of_trace": round(kept / trace_records, 6) if trace_records else None}


# --- text ---------------------------------------------------------------------------------------------------

def _vcpus(vs: list[int]) -> str:
    """0,1,2,3 -> 0-3; gaps kept: 0,2,3 -> 0,2-3."""
    out, i = [], 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        out.append(str(vs[i]) if i == j else f"{vs[i]}-{vs[j]}")
        i = j + 1
    return ",".join(out) or "-"


def _table(header: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    cells = [header] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _ranges(entries: list[dict[str, Any]], who: str) -> str:
    return "; ".join(f"{who} {e['sharer']} " + ",".join(f"[{lo:#x},{hi:#x})" for lo, hi in e["ranges"])
                     for e in entries) or "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def format_text(r: dict[str, Any]) -> str:
    """The human-readable report of a report dict."""
    who = "tid" if r["sharers"] == "thread" else "vcpu"
    s, mv, il = r["summary"], r["movement"], r["interleaving"]
    out = [f"memtap sharing  {r['trace']}  ({r['target'] or 'unknown target'}, {il['vcpus'] or '?'} vCPUs)",
           f"lines      {r['line_size']} bytes, keyed by {r['address']} address; sharers: "
           + ("threads" if r["sharers"] == "thread" else "vCPUs (the trace has no thread column)"),
           f"recorded   {il['description']}"]
    rl, ra = il["runs_per_line"], il["runs_all_data"]
    if rl["runs"]:
        out.append(f"runs       on lines several vCPUs touched, one vCPU's accesses between other vCPUs': median "
                   f"{rl['median']} (access-weighted {rl['access_weighted_median']}), mean {rl['mean']}, longest "
                   f"{rl['longest']}, {rl['runs']} runs")
    if ra["runs"]:
        out.append(f"           over all data accesses, one vCPU's between switches: median {ra['median']} "
                   f"(access-weighted {ra['access_weighted_median']}), mean {ra['mean']}, {ra['runs']} runs")
    if il["warning"]:
        out.append(f"warning    {il['warning']}")
    out += ["", "Summary"]
    out += _table(["", ""], [
        ["data accesses analysed", s["data_accesses"]],
        ["skipped: MMIO", s["skipped_io"]],
        ["skipped: no physical address", s["skipped_no_paddr"]],
        ["distinct lines", s["lines"]],
        ["lines touched by several vCPUs", s["lines_multi_vcpu"]],
        ["shared lines (false/true/read)", f"{s['shared_lines']} ({s['false']}/{s['true']}/{s['read']})"],
        ["transfers (all lines)", s["transfers"]],
        ["shared addresses", s["shared_addresses"]],
        ["movement mode would keep", f"{mv['movement_records']} records ({_pct(mv['kept_of_data'])} of data "
                                     f"accesses, {_pct(mv['kept_of_trace'])} of the trace)"],
    ])[1:]
    if r.get("per_process"):
        out += ["", "Distinct lines per process"]
        out += _table(["pid", "lines", "moved lines"],
                      [[e["pid"], e["lines"], e["moved_lines"]] for e in r["per_process"]])
    shown = r["lines"]
    if not shown:
        out += ["", "No line was touched by more than one " + ("thread." if who == "tid" else "vCPU.")]
        return "\n".join(out)
    out += ["", "Shared cache lines, by transfers"]
    out += _table(["#", "address", "kind", "transfers", "readers", "writers", *(["threads"] if who == "tid" else []),
                   "symbols"],
                  [[i, f"{ln['address']:#x}", ln["kind"], ln["transfers"], _vcpus(ln["readers"]),
                    _vcpus(ln["writers"]), *([",".join(map(str, ln["threads"]))] if who == "tid" else []),
                    " ".join(ln["symbols"]) or "-"] for i, ln in enumerate(shown)])
    if r["lines_omitted"]:
        out.append(f"  ({r['lines_omitted']} more shared lines not shown: --top)")
    out += ["", "Line distribution, by offset"]
    for i, (ln, d) in enumerate(zip(shown, r["details"], strict=True)):
        va = "" if d["vaddr"] in (None, ln["address"]) else f"  (virtual {d['vaddr']:#x}" + (
            ", and other aliases)" if d["aliased"] else ")")
        out += ["", f"  #{i}  {ln['address']:#x}  {ln['kind']}  {' '.join(ln['symbols'])}{va}",
                f"      written: {_ranges(d['written'], who)}"]
        out += _table(["offset", who, "vcpus", "size", "reads", "writes", "variable", "code"],
                      [[f"{o['offset']:#x}", o["sharer"], _vcpus(o["vcpus"]), ",".join(map(str, o["sizes"])),
                        o["reads"], o["writes"], o["field"] or o["symbol"],
                        " ".join(f"{c['function'] or hex(c['pc'])}" for c in o["code"])] for o in d["offsets"]],
                      indent="      ")
    if r["shared_addresses"]:
        out += ["", f"Shared addresses (touched by more than one {'thread' if who == 'tid' else 'vCPU'})"]
        out += _table(["address", "variable", "accesses", f"per {who}"],
                      [[f"{a['address']:#x}", a["field"] or a["symbol"], a["accesses"],
                        " ".join(f"{e['sharer']}:{e['accesses']}" for e in a["by_sharer"])]
                       for a in r["shared_addresses"]])
    return "\n".join(out)


def format_movement(r: dict[str, Any]) -> str:
    """The text of ``memtap sharing --movement``."""
    records = r["trace_records"] if r["trace_records"] is not None else "unknown (truncated)"
    return "\n".join([
        f"memtap sharing --movement  {r['trace']}  ({r['line_size']}-byte lines, {r['address']} addresses)",
        f"trace records           {records}",
        f"data accesses           {r['data_accesses']}",
        f"movement mode keeps     {r['movement_records']} records ({_pct(r['kept_of_data'])} of data accesses, "
        f"{_pct(r['kept_of_trace'])} of the trace)",
        f"records with transfers  {r['transfer_records']}",
    ])
