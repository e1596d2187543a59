"""Cache-line sharing between cores, mtrace's mscan analyses without kernel hooks: which lines more than one vCPU
(or thread) touched, who read and wrote which bytes, how often the line moved between cores, false or true
sharing, the variables in it, the shared addresses, and how finely the trace's vCPUs took turns.

    report = analyze(memtap.open("run.trace"), data=DataSymbols(...))    # the JSON-ready dict
    print(format_text(report))

docs/sharing.md has the rules (mtrace's movement rule, the classes) and what the interleaving means.
"""

from __future__ import annotations

from typing import Any

from memtap.analysis.datasyms import DataSymbols
from memtap.analysis.sharing.interleave import interleaving, recording_mode
from memtap.analysis.sharing.lines import shared_addresses, shared_lines
from memtap.analysis.sharing.passes import (
    PROCESS_COLUMN,
    THREAD_COLUMN,
    Passes,
    Transfers,
    has_column,
    has_physical,
    movement_flags,
    run_passes,
    trace_source,
)
from memtap.analysis.sharing.report import (
    Namer,
    address_entry,
    format_movement,
    format_text,
    line_detail,
    line_entry,
    movement,
    summary,
)
from memtap.analysis.symbols import Symbols
from memtap.errors import UserError
from memtap.trace.reader import Trace

__all__ = ["analyze", "build_report", "format_movement", "format_text", "movement_flags", "movement_report",
           "run_passes", "Passes", "Transfers"]


def choose_address(trace: Trace, address: str) -> bool:
    """Whether lines are keyed by physical address. ``auto``: physical when the trace has physical addresses,
    since caches are physical: two processes' private data at one virtual address are not one line, and one
    page mapped at two virtual addresses is."""
    if address not in ("auto", "physical", "virtual"):
        raise UserError(f"--address {address!r}: choose auto, physical or virtual")
    if address == "physical" and not has_physical(trace):
        raise UserError(f"{trace.path} was recorded with --addr virtual: it has no physical addresses")
    if address == "virtual" and trace.info.get("addresses") == "physical":
        raise UserError(f"{trace.path} was recorded with --addr physical: it has no virtual addresses")
    return address == "physical" or (address == "auto" and has_physical(trace))


def choose_sharers(sharers: str) -> bool:
    """Whether threads are the sharers. ``auto``: threads where the trace knows them, else vCPUs."""
    if sharers not in ("auto", "thread", "vcpu"):
        raise UserError(f"--sharers {sharers!r}: choose auto, thread or vcpu")
    if sharers == "thread" and not has_column(THREAD_COLUMN):
        raise UserError("the trace has no thread column: sharers can only be vCPUs")
    return sharers == "thread" or (sharers == "auto" and has_column(THREAD_COLUMN))


def analyze(trace: Trace, line_size: int = 64, address: str = "auto", sharers: str = "auto",
            data: DataSymbols | None = None, code: Symbols | None = None, top: int | None = None,
            batch_rows: int = 1 << 20) -> dict[str, Any]:
    """The whole report of one trace. ``top``: keep only the N lines with most transfers (and the N busiest
    shared addresses); None keeps all."""
    physical = choose_address(trace, address)
    threads = choose_sharers(sharers)
    group = PROCESS_COLUMN if has_column(PROCESS_COLUMN) else None
    p = run_passes(trace_source(trace, batch_rows), line_size, physical, threads,
                   virtual=trace.info.get("addresses") != "physical", group=group)
    return build_report(p, trace, Namer(data, code), top)


def build_report(p: Passes, trace: Trace, namer: Namer, top: int | None = None) -> dict[str, Any]:
    lines = shared_lines(p)
    addresses = shared_addresses(lines)
    shown = lines if not top else lines[:top]
    namer.prepare(p.rows["pc"])
    report: dict[str, Any] = {
        "trace": str(trace.path),
        "target": trace.arch,
        "line_size": p.line_size,
        "address": "physical" if p.physical else "virtual",
        "sharers": "thread" if p.threads else "vcpu",
        "lines": [line_entry(ln, namer, p.line_size) for ln in shown],
        "lines_omitted": len(lines) - len(shown),
        "details": [line_detail(ln, namer) for ln in shown],
        "shared_addresses": [address_entry(a, namer) for a in (addresses if not top else addresses[:top])],
        "summary": summary(p, lines, addresses),
        "movement": movement(p.counters, _trace_records(trace)),
        "interleaving": interleaving(recording_mode(trace.meta, trace.info), p.runs_line, p.runs_all),
    }
    if p.per_group is not None:
        report["per_process"] = [{"pid": e["group"], "lines": e["lines"], "moved_lines": e["moved_lines"]}
                                 for e in p.per_group]
    return report


def movement_report(trace: Trace, line_size: int = 64, address: str = "auto", batch_rows: int = 1 << 20
                    ) -> dict[str, Any]:
    """Only what mtrace's movement recording mode would keep of the trace (one pass)."""
    from memtap.analysis.sharing.native import Core
    from memtap.analysis.sharing.passes import PASS1_COLUMNS, line_shift

    physical = choose_address(trace, address)
    key = "paddr" if physical else "vaddr"
    core = Core(line_shift(line_size))
    for cols in trace_source(trace, batch_rows)([*PASS1_COLUMNS, key]):
        core.pass1(cols, key, None, physical)
    return {"trace": str(trace.path), "line_size": line_size, "address": "physical" if physical else "virtual",
            **movement(core.counters(), _trace_records(trace))}


def _trace_records(trace: Trace) -> int | None:
    """All records of the trace, from its END chunk's counts by kind (None when truncated)."""
    counts = (trace.end or {}).get("records")
    return sum(int(v) for v in counts.values()) if isinstance(counts, dict) else None
