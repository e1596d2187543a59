"""Profiles: executed instructions (Ir), loads (Dr) and stores (Dw) per function and per source line, as a
sorted table or a cachegrind-format file that valgrind's cg_annotate reads.

Counts are attributed by each instruction's address: to the function symbol that contains it and to the source
line its DWARF row names. Extra events (e.g. cache misses per instruction) join as more columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from memtap.analysis.execution import ExecutionCounts
from memtap.analysis.symbols import Symbols

BASE_EVENTS = ("Ir", "Dr", "Dw")
UNKNOWN = "???"  # cachegrind's name for an unknown file or function


@dataclass(frozen=True)
class Profile:
    """Event counts per instruction address (``values``: one row per ``pc``, one column per event), with each
    address's function index, source file index (-1: unknown) and line (0: unknown)."""

    events: tuple[str, ...]
    pc: np.ndarray
    values: np.ndarray
    function: np.ndarray
    file: np.ndarray
    line: np.ndarray
    symbols: Symbols

    @property
    def totals(self) -> list[int]:
        return [int(v) for v in self.values.sum(axis=0, dtype=np.uint64)]

    def function_name(self, fn: int) -> str:
        return self.symbols.functions[fn].name if fn >= 0 else UNKNOWN

    def file_name(self, fi: int) -> str:
        return self.symbols.files[fi] if fi >= 0 else UNKNOWN


@dataclass(frozen=True)
class Row:
    """One line of the terminal table: what is counted, where it is, and its event counts."""

    name: str
    where: str
    values: tuple[int, ...]


def _at(pcs: np.ndarray, src_pc: np.ndarray, src_val: np.ndarray) -> np.ndarray:
    """src_val at each of pcs (0 where src_pc lacks it); src_pc sorted and unique."""
    if len(src_pc) == 0:
        return np.zeros(len(pcs), np.uint64)
    i = np.minimum(np.searchsorted(src_pc, pcs), len(src_pc) - 1)
    return np.where(src_pc[i] == pcs, src_val[i], 0).astype(np.uint64)


def build_profile(counts: ExecutionCounts, symbols: Symbols,
                  extra: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Profile:
    """A profile of the counted instructions; ``extra`` adds events as {name: (sorted unique pcs, counts)}."""
    extra = extra or {}
    pcs = np.unique(np.concatenate([counts.pc, *(p for p, _ in extra.values())])) if extra else counts.pc
    cols = [_at(pcs, counts.pc, getattr(counts, f)) for f in ("executed", "loads", "stores")]
    cols += [_at(pcs, p, v) for p, v in extra.values()]
    values = np.stack(cols, axis=1) if len(pcs) else np.zeros((0, len(cols)), np.uint64)
    files, lines = symbols.locate(pcs)
    return Profile(BASE_EVENTS + tuple(extra), pcs, values, symbols.function_index(pcs), files, lines, symbols)


CACHE_EVENTS = {"I1mr": ("first", "instruction", "fetch"), "D1mr": ("first", "data", "load"),
                "D1mw": ("first", "data", "store"), "ILmr": ("last", "instruction", "fetch"),
                "DLmr": ("last", "data", "load"), "DLmw": ("last", "data", "store")}


def cache_events(results: Sequence, levels: Sequence) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cachegrind's miss events from cache simulations (memtap.cachesim results, one per trace, summed per pc):
    I1mr, D1mr, D1mw are misses at the first level on the instruction or data side, ILmr, DLmr, DLmw at the
    last level on that side."""
    out = {}
    for event, (which, side, kind) in CACHE_EVENTS.items():
        serving = [lv.name for lv in levels if lv.side in ("unified", side)]
        level = serving[0] if which == "first" else serving[-1]
        rows = [r.misses_by_pc(level) for r in results]
        pc = np.concatenate([r["pc"] for r in rows]).astype(np.uint64)
        uniq, sums, _ = _group(pc, np.concatenate([r[kind] for r in rows]).astype(np.uint64)[:, None])
        out[event] = (uniq, sums[:, 0])
    return out


def _group(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique keys, summed values per key, index of each key's first row)."""
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.zeros((len(uniq), values.shape[1]), np.uint64)
    np.add.at(sums, inv, values)
    return uniq, sums, first


def _sorted_rows(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (tuple(-v for v in r.values), r.name))


def by_function(p: Profile) -> list[Row]:
    """One row per function (``???``: addresses outside every symbol), located at its entry's source line."""
    fns, sums, _ = _group(p.function, p.values)
    starts = np.array([p.symbols.functions[f].start if f >= 0 else 0 for f in fns.tolist()], np.uint64)
    files, lines = p.symbols.locate(starts)
    return _sorted_rows([
        Row(p.function_name(f), _where(p, fi, ln) if f >= 0 else "?", tuple(int(v) for v in s))
        for f, s, fi, ln in zip(fns.tolist(), sums, files.tolist(), lines.tolist(), strict=True)])


def by_line(p: Profile) -> list[Row]:
    """One row per source line (``???:0``: addresses without one), with the function of its first address."""
    key = (p.file.astype(np.int64) + 1).astype(np.uint64) << np.uint64(32) | p.line.astype(np.uint64)
    _, sums, first = _group(key, p.values)
    return _sorted_rows([
        Row(_where(p, int(p.file[i]), int(p.line[i])), p.function_name(int(p.function[i])),
            tuple(int(v) for v in s)) for s, i in zip(sums, first.tolist(), strict=True)])


def _where(p: Profile, fi: int, line: int) -> str:
    return f"{os.path.basename(p.file_name(fi))}:{line}" if fi >= 0 else "?"


def write_table(p: Profile, rows: Sequence[Row], out: TextIO, headings: tuple[str, str], top: int | None) -> None:
    """A fixed-width table: the events, then the share of the first event, then the two name columns."""
    shown = list(rows if top is None else rows[:top])
    total = p.totals
    width = [max(len(e), len(f"{t:,}")) for e, t in zip(p.events, total, strict=True)]
    name_w = max([len(headings[0]), 5, *(len(r.name) for r in shown)])

    def line(values: Sequence[str], share: str, name: str, where: str) -> str:
        cells = "  ".join(f"{v:>{w}}" for v, w in zip(values, width, strict=True))
        return f"{cells}  {share:>6}  {name:<{name_w}}  {where}".rstrip() + "\n"

    out.write(line(p.events, f"{p.events[0]}%", *headings))
    out.write(line([f"{t:,}" for t in total], "100.0%" if total[0] else "-", "total", ""))
    for r in shown:
        share = f"{100 * r.values[0] / total[0]:.1f}%" if total[0] else "-"
        out.write(line([f"{v:,}" for v in r.values], share, r.name, r.where))
    if len(shown) < len(rows):
        out.write(f"({len(rows) - len(shown)} more rows; --top N shows more)\n")


def write_cachegrind(p: Profile, out: TextIO, cmd: str, desc: str) -> None:
    """A cachegrind output file: ``fl=`` source file, ``fn=`` function, then ``LINE counts...`` rows, and a
    ``summary:`` that equals the sum of every row (cg_annotate checks the events and the summary)."""
    out.write(f"desc: {desc}\ncmd: {cmd}\nevents: {' '.join(p.events)}\n")
    # Sort by (file name, function name, line): one fl= per file, one fn= per function within it.
    fl = [p.file_name(f) for f in p.file.tolist()]
    fn = [p.function_name(f) for f in p.function.tolist()]
    names = sorted(set(fl) | set(fn))
    rank = {n: i for i, n in enumerate(names)}
    key = np.stack([np.array([rank[n] for n in fl], np.int64), np.array([rank[n] for n in fn], np.int64),
                    p.line.astype(np.int64)], axis=1) if len(fl) else np.zeros((0, 3), np.int64)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    sums = np.zeros((len(uniq), len(p.events)), np.uint64)
    np.add.at(sums, inv.reshape(-1), p.values)
    cur_fl = cur_fn = None
    for (f, g, ln), s in zip(uniq.tolist(), sums.tolist(), strict=True):
        if names[f] != cur_fl:
            cur_fl, cur_fn = names[f], None
            out.write(f"fl={cur_fl}\n")
        if names[g] != cur_fn:
            cur_fn = names[g]
            out.write(f"fn={cur_fn}\n")
        out.write(f"{ln} {' '.join(str(v) for v in s)}\n")
    out.write(f"summary: {' '.join(str(t) for t in p.totals)}\n")
