"""``memtap view``: print records one per line, in a fixed-column format meant for eyes, grep and head.

Also holds the record-selection options (--range, --addr, --kinds, --vcpu, --order) shared with ``export``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

import numpy as np

from memtap import layout as L
from memtap.errors import UserError
from memtap.reader import DEFAULT_BATCH_SIZE, open_trace, parse_kinds

_PRIVS = ("user", "supervisor", "hypervisor", "machine", "unknown")


def parse_int(text: str, what: str) -> int:
    """Decimal or 0x-prefixed hex, with a message that names the option on failure."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a number (decimal or 0x-prefixed hex)") from None
    if value < 0:
        raise UserError(f"{what}: {text!r} is negative")
    return value


def parse_span(text: str, what: str) -> tuple[int | None, int | None]:
    """'LO:HI' (half-open), 'LO:' or ':HI'; LO and HI decimal or 0x hex."""
    if ":" not in text:
        raise UserError(f"{what}: expected LO:HI (half-open, either end may be omitted), got {text!r}")
    lo_s, hi_s = text.split(":", 1)
    lo = parse_int(lo_s, what) if lo_s.strip() else None
    hi = parse_int(hi_s, what) if hi_s.strip() else None
    if lo is not None and hi is not None and hi < lo:
        raise UserError(f"{what}: {text!r} ends before it starts")
    return lo, hi


def add_selection_arguments(p: argparse.ArgumentParser, default_order: str = "pos") -> None:
    """Record-selection options shared by view and export."""
    p.add_argument("--range", metavar="POS_LO:POS_HI", help="only records with POS_LO <= pos < POS_HI "
                   "(either end may be omitted)")
    p.add_argument("--addr", metavar="LO:HI", help="only records with LO <= vaddr < HI (hex with 0x); "
                   "markers have no address and are dropped")
    p.add_argument("--kinds", action="append", metavar="KIND[,KIND...]",
                   help=f"only these record kinds ({', '.join(L.KIND_NAMES)}); repeatable")
    p.add_argument("--vcpu", action="append", type=int, metavar="N", help="only this vCPU; repeatable")
    p.add_argument("--order", choices=("pos", "file"), default=default_order,
                   help="pos: one global order over all vCPUs (default %(default)s); file: as stored, "
                   "chunk by chunk (faster)")


def selection_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Turn the selection options into ``Trace.batches`` keyword arguments."""
    kinds = None
    if args.kinds:
        kinds = parse_kinds(",".join(args.kinds))
    return {
        "kinds": kinds,
        "vcpus": args.vcpu,
        "pos_range": parse_span(args.range, "--range") if args.range else None,
        "addr_range": parse_span(args.addr, "--addr") if args.addr else None,
        "order": args.order,
    }


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
        va_s = "-" if marker else f"0x{va:x}"
        pa_s = f"0x{pa:x}" if flags & L.RF_PADDR else "-"
        tail = ""
        if flags & L.RF_IO:
            tail += " io"
        if flags & L.RF_SIGNED:
            tail += " signed"
        if flags & L.RF_BIG_ENDIAN:
            tail += " be"
        if marker:
            tail += f" value={value:#x}"
        priv_s = _PRIVS[priv] if priv <= L.PRIV_MACHINE else "unknown"
        lines.append(
            f"pos={pos:<10} vcpu={vcpu:<3} icount={icount:<10} {L.KIND_NAMES[kind]:<6} va={va_s:<{aw}} "
            f"pa={pa_s:<{aw}} size={size:<3} pc=0x{pc:<{aw - 2}x} priv={priv_s:<10}{tail}".rstrip()
        )
    return lines


def _silence_stdout() -> None:
    """After the reader of our pipe went away, point stdout at /dev/null so the exit-time flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap view``."""
    p = subparsers.add_parser("view", help="print records, one per line",
                              description="Print a trace's records one per line (addresses in hex).")
    p.add_argument("trace", metavar="TRACE", help="trace file")
    p.add_argument("--head", type=int, metavar="N", help="stop after N records")
    add_selection_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the selected records; a closed pipe (``| head``) ends quietly with status 0."""
    if args.head is not None and args.head < 0:
        raise UserError("--head: N must be >= 0")
    trace = open_trace(args.trace)
    kwargs = selection_kwargs(args)
    if trace.truncated:
        print(f"memtap: warning: {trace.path} is truncated (no END chunk); showing records up to the last "
              "whole chunk", file=sys.stderr)
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
            out.write("\n".join(format_records(b, trace.address_bits)) + "\n")
            if left == 0:
                break
        out.flush()
    except BrokenPipeError:
        if out is sys.stdout:
            _silence_stdout()
    return 0
