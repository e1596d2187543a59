"""``memtap cachesim``: run a trace through a simulated cache hierarchy and print miss rates per level."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from memtap.analysis.cachesim import (
    Config,
    Level,
    load_config,
    preset,
    preset_names,
    simulate,
    simulate_trace,
    with_options,
)
from memtap.analysis.cachesim.config import parse_size
from memtap.errors import UserError
from memtap.trace.reader import open_trace

DEFAULT_PRESET = "zen4"
_FLAGS = {"lru": ("replacement", "lru"), "fifo": ("replacement", "fifo"), "random": ("replacement", "random"),
          "plru": ("replacement", "plru"), "wt": ("write_back", False), "nowa": ("write_allocate", False),
          "inclusive": ("inclusive", True), "shared": ("shared", True), "i": ("side", "instruction"),
          "d": ("side", "data")}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``memtap cachesim``."""
    p = subparsers.add_parser(
        "cachesim", help="simulate a cache hierarchy over a trace",
        description="Run a trace's fetches, loads and stores through a cache hierarchy (a TOML --config, a "
        f"--preset, or --cache flags; default: the {DEFAULT_PRESET} preset) and print accesses, misses, "
        "write-backs and evictions per level and vCPU, and the PCs and address ranges with the most misses. "
        "docs/cachesim.md describes the model.")
    p.add_argument("trace", metavar="TRACE", nargs="?", help="trace file (or --ring NAME)")
    p.add_argument("--ring", metavar="NAME",
                   help="simulate live from the ring of a running `memtap record --ring NAME` instead of a file "
                        "(attach before recording starts, e.g. with record's --ring-wait 1, to see every record)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE", help="TOML hierarchy description")
    src.add_argument("--preset", metavar="NAME", help=f"a shipped hierarchy: {', '.join(preset_names())}")
    src.add_argument("--cache", metavar="SPEC", action="append",
                     help="one level, from the core outwards (repeat): NAME:SIZE:WAYS[:LINE][,FLAG...], WAYS "
                     "'full' for fully associative, FLAGs lru|fifo|random|plru, wt (write-through), nowa (no "
                     "write-allocate), inclusive, shared, i|d (instruction or data side); e.g. "
                     "--cache L1D:32KiB:8,d --cache L1I:32KiB:8,i --cache L2:1MiB:16,shared")
    p.add_argument("--semantics", choices=["memtap", "pycachesim"], help="counting rules (default: memtap)")
    p.add_argument("--classify", action="store_true", default=None,
                   help="split misses into compulsory, capacity, conflict and coherence")
    p.add_argument("--once", action="store_true", help="count a line-crossing access once, not once per line")
    p.add_argument("--address", choices=["virtual", "physical"],
                   help="index caches by virtual (default) or physical addresses")
    p.add_argument("--seed", type=int, help="seed of random replacement (default 1)")
    p.add_argument("--reset-on-marker", type=int, metavar="N", help="zero the statistics at MEMTAP_MARK(N)")
    p.add_argument("--range-bits", type=int, metavar="B", help="per-range misses over 2**B bytes (default 12)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows of the top-miss tables (default 10)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)
    return p


def parse_cache_spec(spec: str) -> Level:
    """A Level from NAME:SIZE:WAYS[:LINE][,FLAG...]."""
    head, *flags = spec.split(",")
    parts = head.split(":")
    if len(parts) not in (3, 4) or not parts[0]:
        raise UserError(f"--cache {spec!r}: expected NAME:SIZE:WAYS[:LINE][,FLAG...]")
    name = parts[0]
    ways = 0 if parts[2] == "full" else parts[2]
    if not isinstance(ways, int) and not ways.isdigit():
        raise UserError(f"{name}.ways: {parts[2]!r} is not a number or 'full'")
    kw: dict[str, Any] = {"name": name, "size": parse_size(parts[1], f"{name}.size"), "ways": int(ways)}
    if len(parts) == 4:
        kw["line"] = parse_size(parts[3], f"{name}.line")
    for flag in flags:
        if flag not in _FLAGS:
            raise UserError(f"{name}: unknown flag {flag!r} (flags: {', '.join(_FLAGS)})")
        key, value = _FLAGS[flag]
        kw[key] = value
    return Level(**kw)


def build_config(args: argparse.Namespace) -> Config:
    """The hierarchy and options the command line asks for, validated."""
    if args.config:
        cfg = load_config(args.config)
    elif args.cache:
        cfg = Config(levels=tuple(parse_cache_spec(s) for s in args.cache), name="command line")
    else:
        cfg = preset(args.preset or DEFAULT_PRESET)
        cfg = with_options(cfg, name=f"preset {args.preset or DEFAULT_PRESET}")
    return with_options(cfg, semantics=args.semantics, classify=args.classify, address=args.address,
                        seed=args.seed, reset_marker=args.reset_on_marker, range_bits=args.range_bits,
                        split_lines=False if args.once else None)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Simulate the whole trace in its global order and print the result."""
    from memtap.analysis.cachesim.report import format_result

    out = sys.stdout if out is None else out
    try:
        cfg = build_config(args)
    except UserError as exc:  # a geometry that cannot exist is a usage error
        print(f"memtap: {exc}", file=sys.stderr)
        return 2
    if args.top < 0:
        raise UserError("--top must be 0 or more")
    if (args.trace is None) == (args.ring is None):
        raise UserError("give either a trace file or --ring NAME")
    if args.ring is not None:
        from memtap.live.ring import connect

        with connect(args.ring) as consumer:   # each batch is simulated before the next is asked for
            res = simulate(consumer, cfg)
        source = f"ring {args.ring}"
    else:
        res = simulate_trace(open_trace(args.trace), cfg)
        source = args.trace
    text = json.dumps(res.to_dict(args.top), indent=2) if args.json else format_result(
        res, f"{source} ({cfg.name or 'config'})", args.top)
    try:
        out.write(text + "\n")
        out.flush()
    except BrokenPipeError:
        pass
    return 0
