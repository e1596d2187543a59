"""Line and function coverage from execution counts, written as lcov tracefiles or gcov-like listings.

Rules (docs/coverage.md): a line has code when the DWARF line table maps some instruction to it; its count is
the highest execution count among the instructions mapped to it (for a loop header, the number of times its
condition ran), 0 when none ran. A function's count is the number of times its entry instruction ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from memtap.analysis.execution import ExecutionCounts
from memtap.analysis.symbols import Symbols, Warn


@dataclass(frozen=True)
class FunctionCoverage:
    name: str
    line: int
    count: int


@dataclass
class FileCoverage:
    """One source file: ``lines`` maps each line with code to its count."""

    path: str
    lines: dict[int, int] = field(default_factory=dict)
    functions: list[FunctionCoverage] = field(default_factory=list)


@dataclass
class CoverageReport:
    """Per-file coverage; ``unplaced`` are functions whose entry has no source line (no DWARF for them)."""

    files: list[FileCoverage]
    unplaced: list[FunctionCoverage]
    runs: int = 1

    def totals(self) -> tuple[int, int, int, int]:
        """(lines with code, lines executed, functions, functions executed)."""
        lines = [c for f in self.files for c in f.lines.values()]
        fns = [fn.count for f in self.files for fn in f.functions] + [fn.count for fn in self.unplaced]
        return len(lines), sum(c > 0 for c in lines), len(fns), sum(c > 0 for c in fns)


def _line_counts(counts: ExecutionCounts, symbols: Symbols) -> dict[tuple[int, int], int]:
    """(file index, line) -> the highest count among the executed instructions mapped to that line."""
    files, lines = symbols.locate(counts.pc)
    known = files >= 0
    key = (files[known].astype(np.uint64) << np.uint64(32)) | lines[known].astype(np.uint64)
    if len(key) == 0:
        return {}
    order = np.argsort(key, kind="stable")
    key, ran = key[order], counts.executed[known][order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    best = np.maximum.reduceat(ran, starts)
    return {(int(k >> np.uint64(32)), int(k & np.uint64(0xFFFFFFFF))): int(c)
            for k, c in zip(key[starts], best, strict=True)}


def coverage(counts: ExecutionCounts, symbols: Symbols, runs: int = 1) -> CoverageReport:
    """Coverage of every source line and function the ELF files describe, from (merged) execution counts."""
    files = [FileCoverage(p) for p in symbols.files]
    for fi, ln in zip(*(a.tolist() for a in symbols.code_lines()), strict=True):
        files[fi].lines[ln] = 0
    for (fi, ln), c in _line_counts(counts, symbols).items():
        files[fi].lines[ln] = c
    entries = sorted({f.start: f for f in reversed(symbols.functions) if f.is_function}.items())
    starts = np.array([s for s, _ in entries], np.uint64)
    ran = counts.count_at(starts).tolist()
    where, lines = symbols.locate(starts)
    unplaced = []
    for (_, fn), c, fi, ln in zip(entries, ran, where.tolist(), lines.tolist(), strict=True):
        (files[fi].functions if fi >= 0 else unplaced).append(FunctionCoverage(fn.name, ln, c))
    for f in files:
        f.lines = dict(sorted(f.lines.items()))
        f.functions.sort(key=lambda fn: (fn.line, fn.name))
    return CoverageReport([f for f in files if f.lines or f.functions], unplaced, runs)


def write_lcov(report: CoverageReport, out: TextIO, warn: Warn) -> None:
    """An lcov tracefile (the format genhtml reads): FN/FNDA/FNF/FNH and DA/LF/LH records per source file."""
    if report.unplaced:
        warn(f"{len(report.unplaced)} functions have no source line (no DWARF for them): the lcov report "
             "leaves them out")
    out.write("TN:\n")
    for f in report.files:
        out.write(f"SF:{f.path}\n")
        for fn in f.functions:
            out.write(f"FN:{fn.line},{fn.name}\n")
        for fn in f.functions:
            out.write(f"FNDA:{fn.count},{fn.name}\n")
        out.write(f"FNF:{len(f.functions)}\nFNH:{sum(fn.count > 0 for fn in f.functions)}\n")
        for line, c in f.lines.items():
            out.write(f"DA:{line},{c}\n")
        out.write(f"LF:{len(f.lines)}\nLH:{sum(c > 0 for c in f.lines.values())}\nend_of_record\n")


def _gcov_line(count: str, line: int, text: str) -> str:
    return f"{count:>9}:{line:>5}:{text}\n"


def write_gcov_text(report: CoverageReport, out: TextIO, warn: Warn) -> None:
    """gcov-like annotated listings, one per source file: ``count:line:source``, ``#####`` for a line with code
    that never ran, ``-`` for a line without code, and ``function NAME called N`` before each function."""
    for f in report.files:
        out.write(_gcov_line("-", 0, f"Source:{f.path}") + _gcov_line("-", 0, f"Runs:{report.runs}"))
        try:
            text = Path(f.path).read_text(errors="replace").splitlines()
        except OSError:
            warn(f"source file {f.path} not found: its counts are listed without the text")
            text = []
        called: dict[int, list[FunctionCoverage]] = {}
        for fn in f.functions:
            called.setdefault(fn.line, []).append(fn)
        last = max([len(text), *f.lines, *called])
        for n in range(1, last + 1):
            if not text and n not in f.lines and n not in called:
                continue
            for fn in called.get(n, []):
                out.write(f"function {fn.name} called {fn.count}\n")
            c = f.lines.get(n)
            mark = "-" if c is None else str(c) if c else "#####"
            out.write(_gcov_line(mark, n, text[n - 1] if n <= len(text) else ""))
    if report.unplaced:
        out.write(_gcov_line("-", 0, "Source:???") + _gcov_line("-", 0, f"Runs:{report.runs}"))
        for fn in report.unplaced:
            out.write(f"function {fn.name} called {fn.count}\n")
