"""``memtap profile``: executed instructions, loads and stores per function or source line, as a sorted table
and optionally a cachegrind-format file for cg_annotate."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from memtap.analysis.profile import build_profile, by_function, by_line, cache_events, write_cachegrind, write_table
from memtap.analysis.symbols import default_warn
from memtap.cli.analysis import add_elf_argument, load_symbols, merged_counts, output
from memtap.errors import UserError
from memtap.trace.reader import Trace


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap profile``."""
    p = subparsers.add_parser(
        "profile", help="instructions, loads and stores per function or source line",
        description="Executed instructions (Ir), loads (Dr) and stores (Dw) per function or per source line, "
        "summed over one or more traces, as a table sorted by Ir; --cachegrind also writes them in the format "
        "valgrind's cg_annotate reads.")
    p.add_argument("traces", nargs="+", metavar="TRACE", help="trace files (their counts add up)")
    add_elf_argument(p, required=True)
    p.add_argument("--by", choices=("function", "line"), default="function",
                   help="one table row per function (default) or per source line")
    p.add_argument("--top", type=int, default=20, metavar="N", help="show the N largest rows (default 20; 0: all)")
    p.add_argument("--cachegrind", metavar="OUT", help="also write a cachegrind-format file ('-' = stdout, "
                   "instead of the table)")
    p.add_argument("--cache", metavar="PRESET|FILE", help="also simulate this cache hierarchy (a preset name or "
                   "a TOML file, see docs/cachesim.md) and add the miss events I1mr D1mr D1mw ILmr DLmr DLmw")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise UserError("--top: N must be >= 0")
    warn = default_warn()
    counts, arch, traces = merged_counts(args.traces, need_fetches=False, warn=warn)
    symbols = load_symbols(args, arch, warn)
    symbols.note_resolved(counts.pc)
    symbols.warn_unresolved()
    prof = build_profile(counts, symbols, _cache_misses(args.cache, traces) if args.cache else None)
    if args.cachegrind:
        cmd = traces[0].meta.get("qemu_command") or ["memtap"]
        desc = "memtap profile of " + " ".join(str(t.path) for t in traces)
        out, close = output(args.cachegrind)
        try:
            write_cachegrind(prof, out, shlex.join(cmd), desc)
        finally:
            if close:
                out.close()
        if not close:
            return 0
    rows = by_function(prof) if args.by == "function" else by_line(prof)
    headings = ("function", "source") if args.by == "function" else ("source", "function")
    write_table(prof, rows, sys.stdout, headings, args.top or None)
    return 0


def _cache_misses(which: str, traces: list[Trace]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Simulate each trace (in global order, from a cold hierarchy) and return its misses per pc."""
    from memtap.analysis import cachesim

    config = cachesim.load_config(which) if Path(which).is_file() else cachesim.preset(which)
    results = [cachesim.simulate(t.batches(order="pos"), config, vcpus=max(t.vcpus, default=0) + 1)
               for t in traces]
    return cache_events(results, config.levels)
