"""Record selection shared by `view` and `export`: --range, --addr, --kinds, --vcpu, --order."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from memtap.errors import UserError
from memtap.trace import layout as L
from memtap.trace.reader import Trace, open_trace, parse_kinds


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


def add_selection_arguments(p: argparse.ArgumentParser, default_order: str | None = "pos") -> None:
    """Record-selection options shared by view and export (default_order None: the command resolves it, "pos"
    unless it says otherwise)."""
    p.add_argument("--range", metavar="POS_LO:POS_HI", help="only records with POS_LO <= pos < POS_HI "
                   "(either end may be omitted)")
    p.add_argument("--addr", metavar="LO:HI", help="only records with LO <= vaddr < HI (hex with 0x); "
                   "markers have no address and are dropped")
    p.add_argument("--kinds", action="append", metavar="KIND[,KIND...]",
                   help=f"only these record kinds ({', '.join(L.KIND_NAMES)}); repeatable")
    p.add_argument("--vcpu", action="append", type=int, metavar="N", help="only this vCPU; repeatable")
    p.add_argument("--order", choices=("pos", "file"), default=default_order,
                   help="pos: one global order over all vCPUs (default: pos); file: as stored, chunk by chunk "
                   "(faster)")


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


def open_selected(args: argparse.Namespace, verb: str) -> tuple[Trace, dict[str, Any]]:
    """The trace and its ``batches`` keyword arguments; warns once when the trace is truncated."""
    trace = open_trace(args.trace)
    kwargs = selection_kwargs(args)
    if trace.truncated:
        print(f"memtap: warning: {trace.path} is truncated (no END chunk); {verb} records up to the last "
              "whole chunk", file=sys.stderr)
    return trace, kwargs


def silence_stdout() -> None:
    """After the reader of our pipe went away, point stdout at /dev/null so the exit-time flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
