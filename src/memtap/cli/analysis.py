"""What coverage, profile and view --elf share: the --elf option and merged execution counts of several traces."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from memtap.analysis.execution import ExecutionCounts, execution_counts, has_fetches, merge
from memtap.analysis.symbols import Symbols, Warn, default_warn, parse_elf_spec
from memtap.errors import UserError
from memtap.trace.reader import Trace, open_trace

ELF_HELP = ("guest ELF file with its symbols and DWARF, FILE@OFFSET for an image that runs OFFSET bytes above its "
            "link addresses (decimal or 0x hex, may be negative); repeatable")


def add_elf_argument(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--elf", action="append", required=required, metavar="FILE[@OFFSET]", help=ELF_HELP)


def load_symbols(args: argparse.Namespace, arch: str | None, warn: Warn) -> Symbols:
    return Symbols([parse_elf_spec(e) for e in args.elf], arch, warn)


def merged_counts(paths: list[str], need_fetches: bool, warn: Warn | None = None
                  ) -> tuple[ExecutionCounts, str | None, list[Trace]]:
    """Execution counts summed over several traces of one architecture, and that architecture.

    ``need_fetches``: a trace recorded without instruction fetches is an error (coverage); otherwise a warning
    (a profile still has its loads and stores)."""
    warn = warn or default_warn()
    traces = [open_trace(p) for p in paths]
    arches = {t.arch for t in traces if t.arch}
    if len(arches) > 1:
        raise UserError(f"the traces come from different architectures ({', '.join(sorted(arches))})")
    parts = []
    for t in traces:
        if t.truncated:
            warn(f"{t.path} is truncated (no END chunk); counting records up to the last whole chunk")
        counts = execution_counts(t)
        if not has_fetches(t) or not counts.executed.any():
            how = f"recorded with --events {','.join(t.info['events'])}" if t.info.get("events") else "empty"
            what = f"{t.path} has no instruction fetch records ({how})"
            if need_fetches:
                raise UserError(f"{what}: coverage needs them; record with --events fetch (or the default)")
            warn(f"{what}: executed instructions (Ir) are 0")
        parts.append(counts)
    return merge(parts), (arches.pop() if arches else None), traces


def output(path: str) -> tuple[TextIO, bool]:
    """An output stream for -o PATH ('-' = stdout) and whether the caller must close it."""
    if path == "-":
        return sys.stdout, False
    try:
        return open(path, "w"), True
    except OSError as e:
        raise UserError(f"{path}: cannot write: {e.strerror}") from None
