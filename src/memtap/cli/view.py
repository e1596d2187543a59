"""``memtap view``: print records one per line, in a fixed-column format meant for eyes, grep and head."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import numpy as np

from memtap.analysis.symbols import default_warn
from memtap.cli.analysis import add_elf_argument, load_symbols
from memtap.cli.selection import add_selection_arguments, open_selected, silence_stdout
from memtap.errors import UserError
from memtap.export import qemtrace
from memtap.trace import layout as L
from memtap.trace.reader import DEFAULT_BATCH_SIZE

_PRIVS = ("user", "supervisor", "hypervisor", "machine", "unknown")


def cmo_name(value: int) -> str:
    """A cache operation's record value as text: ``flush/line``, ``prefetch-read/line/L2``."""
    op = L.CMO_OP_NAMES.get(value & 0xF, "unknown")
    text = f"{op}/{L.CMO_GRANULARITY_NAMES.get((value >> 4) & 3, 'unknown')}"
    return text + (f"/L{(value >> 6) & 3}" if (value >> 6) & 3 else "")


def format_records(rec: np.ndarray, addr_bits: int = 64) -> list[str]:
    """One line per record; every column has a fixed minimum width so lines align in a terminal.

    ``pos=12         vcpu=0   icount=7          store  va=0x80001008         pa=-                  size=8   ...``
    Unknown addresses print as '-'; markers end with ``value=0xN``; flags (io, signed, be) are appended.
    """
    aw = 2 + addr_bits // 4
    cols = {name: rec[name].tolist() for name in ("pos", "icount", "vaddr", "paddr", "pc", "value", "vcpu",
                                                  "kind", "size", "priv", "flags")}
    lines = []
    for pos, icount, va, pa, pc, value, vcpu, kind, size, priv, flags in zip(*cols.values(), strict=True):
        marker = kind == L.KIND_MARKER
        whole = kind == L.KIND_CMO and (value >> 4) & 3 == L.CMO_WHOLE
        va_s = "-" if marker or whole or flags & L.RF_NOADDR else f"0x{va:x}"   # exception: where it came from
        pa_s = f"0x{pa:x}" if flags & L.RF_PADDR else "-"
        tail = ""
        if flags & L.RF_IO:
            tail += " io"
        if flags & L.RF_SIGNED:
            tail += " signed"
        if flags & L.RF_BIG_ENDIAN:
            tail += " be"
        if flags & L.RF_ATOMIC:
            tail += " atomic"
        if flags & L.RF_EXCLUSIVE:
            tail += " exclusive"
        if marker:
            tail += f" value={value:#x}"
        elif kind == L.KIND_CMO:
            tail += " " + cmo_name(value) + (" addr=?" if flags & L.RF_NOADDR else "")
        elif kind == L.KIND_EXCEPTION:
            tail += " interrupt" if flags & L.RF_INTERRUPT else " exception"
            tail += f" cause={value:#x}" if flags & L.RF_VALUE else " cause=?"
        priv_s = _PRIVS[priv] if priv <= L.PRIV_MACHINE else "unknown"
        lines.append(
            f"pos={pos:<10} vcpu={vcpu:<3} icount={icount:<10} {L.KIND_NAMES[kind]:<6} va={va_s:<{aw}} "
            f"pa={pa_s:<{aw}} size={size:<3} pc=0x{pc:<{aw - 2}x} priv={priv_s:<10}{tail}".rstrip()
        )
    return lines


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap view``."""
    p = subparsers.add_parser("view", help="print records, one per line",
                              description="Print a trace's records one per line (addresses in hex); with --elf, "
                              "each record's function, source line and instruction (docs/coverage.md).")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("--head", type=int, metavar="N", help="stop after N records")
    p.add_argument("--style", choices=("memtap", "qemtrace"), default="memtap",
                   help="line format: memtap's columns (default) or QEMTrace's text mode, for line-by-line "
                        "comparison with traces from QEMTrace")
    add_elf_argument(p, required=False)
    add_selection_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the selected records; a closed pipe (``| head``) ends quietly with status 0."""
    if args.head is not None and args.head < 0:
        raise UserError("--head: N must be >= 0")
    trace, kwargs = open_selected(args, "showing")
    symbols = load_symbols(args, trace.arch, default_warn()) if getattr(args, "elf", None) else None
    out = sys.stdout if out is None else out
    left = args.head
    batch = DEFAULT_BATCH_SIZE if left is None else max(1, min(left, DEFAULT_BATCH_SIZE))
    try:
        if left == 0:
            return 0
        for b in trace.batches(batch_size=batch, **kwargs):
            if left is not None:
                b = b[:left]
                left -= len(b)
            lines = (qemtrace.format_records(b, trace.address_bits) if args.style == "qemtrace"
                     else format_records(b, trace.address_bits))
            if symbols is not None:
                symbols.note_resolved(b["pc"])
                where = symbols.describe(b["pc"].tolist())
                lines = [f"{line} {where[pc]}" for line, pc in zip(lines, b["pc"].tolist(), strict=True)]
            out.write("\n".join(lines) + "\n")
            if left == 0:
                break
        out.flush()
        if symbols is not None:
            symbols.warn_unresolved()
    except BrokenPipeError:
        if out is sys.stdout:
            silence_stdout()
    return 0
