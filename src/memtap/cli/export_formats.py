"""The options and the run of ``memtap export`` for the simulator and timeline formats (memtap.export.formats):
which address and clock they get, the guest's ELF files, the cache hierarchy that filters Ramulator's SimpleO3
trace, and a live ring instead of a file."""

from __future__ import annotations

import argparse
import sys

from memtap.cli.analysis import ELF_HELP
from memtap.cli.selection import open_selected, selection_kwargs
from memtap.errors import UserError
from memtap.export.formats import module
from memtap.export.stream import Options, ring_source, stderr_warn, trace_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options read only by the formats of memtap.export.formats."""
    g = p.add_argument_group("simulator and timeline formats (docs/formats.md)")
    g.add_argument("--ring", metavar="NAME", help="export live from the ring of a running `memtap record --ring "
                   "NAME` instead of a file (every format but csv and parquet)")
    g.add_argument("--arch", help="with --ring: the guest's QEMU target (x86_64, aarch64, riscv64, ...), for the "
                   "formats that decode instructions")
    g.add_argument("--address", choices=["virtual", "physical"], default="virtual",
                   help="which address the records give (default %(default)s); physical drops, and counts, "
                   "records without one")
    g.add_argument("--time", choices=["icount", "pos"], default="icount",
                   help="the clock of cycles, ticks and timestamps: the vCPU's instruction count or the global "
                   "position (default %(default)s)")
    g.add_argument("--line", type=int, default=64, metavar="BYTES",
                   help="cache-line size of whole-line operations (zeroing, line cleans; default %(default)s)")
    g.add_argument("--elf", action="append", metavar="FILE[@OFFSET]", help="uftrace, chrome, champsim: " + ELF_HELP)
    g.add_argument("--interval", type=int, default=10000, metavar="N",
                   help="chrome: accesses are counted per N units of --time (default %(default)s)")
    g.add_argument("--cache-preset", metavar="NAME", help="ramulator-o3: the cache hierarchy whose last-level "
                   "misses are the trace (a memtap cachesim preset; default zen4)")
    g.add_argument("--cache-config", metavar="FILE", help="ramulator-o3: the hierarchy as a cachesim TOML file")


def options(args: argparse.Namespace) -> Options:
    from memtap.analysis.symbols import parse_elf_spec

    if args.line < 1 or args.line & (args.line - 1):
        raise UserError(f"--line {args.line}: must be a power of two")
    if args.interval < 1:
        raise UserError("--interval must be at least 1")
    return Options(address=args.address, time=args.time, line=args.line,
                   elf=[parse_elf_spec(e) for e in args.elf or []], interval=args.interval, cache=cache_config(args))


def cache_config(args: argparse.Namespace):
    """The hierarchy of ramulator-o3: a TOML file, a preset (default zen4), indexed by --address."""
    from memtap.analysis.cachesim import load_config, preset, with_options

    if args.cache_config and args.cache_preset:
        raise UserError("give --cache-config or --cache-preset, not both")
    cfg = load_config(args.cache_config) if args.cache_config else preset(args.cache_preset or "zen4")
    return with_options(cfg, address=args.address)


def run(args: argparse.Namespace, fmt: str) -> int:
    """Export to ``fmt`` from the trace file or the ring."""
    mod = module(fmt)
    opts = options(args)
    if args.ring is not None:
        if args.trace is not None:
            raise UserError("give either a trace file or --ring NAME, not both")
        source = ring_source(args.ring, selection_kwargs(args), args.arch)
    else:
        if args.trace is None:
            raise UserError("give a trace file or --ring NAME")
        trace, selection = open_selected(args, "exporting")
        source = trace_source(trace, selection)
    mod.write(source, args.output, opts, stderr_warn)
    if args.output == "-":
        sys.stdout.flush()
    return 0
