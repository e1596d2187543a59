"""`memtap top NAME`: a live view of a running recording's ring: rates by kind and vCPU, and the hottest pages.

It attaches as a consumer (so, in the default lossless mode, the guest runs no faster than top reads) and
redraws every --interval seconds. It stops when the recording ends, showing the totals, or after --iterations
frames. When stdout is not a terminal, each frame is printed in turn instead of redrawn.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from memtap.errors import UserError
from memtap.live.ring import Consumer, connect
from memtap.trace.layout import KIND_LOAD, KIND_NAMES, KIND_STORE


def add_parser(sub: Any) -> None:
    p = sub.add_parser("top", help="live view of a recording's ring: rates by kind and vCPU, hottest pages",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ring", metavar="NAME", help="the ring name memtap record printed (or was given)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SEC", help="seconds between frames (default 1)")
    p.add_argument("--iterations", type=int, default=0, metavar="N",
                   help="stop after N frames (default: run until the recording ends)")
    p.add_argument("--pages", type=int, default=10, metavar="N", help="hottest pages to show (default 10)")
    p.add_argument("--page-size", type=lambda text: int(text, 0), default=4096, metavar="BYTES",
                   help="page size for the hottest-pages table, a power of two (default 4096)")
    p.add_argument("--wait", type=float, default=5.0, metavar="SEC",
                   help="how long to wait for the ring to appear (default 5)")
    p.set_defaults(func=run)


@dataclass
class Tally:
    """Totals since top attached, and the same totals at the previous frame (for rates)."""

    page_shift: int
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(len(KIND_NAMES), np.int64))
    vcpus: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pages: dict[int, list[int]] = field(default_factory=dict)  # page -> [loads, stores]
    prev_kinds: np.ndarray = field(default_factory=lambda: np.zeros(len(KIND_NAMES), np.int64))
    prev_vcpus: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    prev_time: float = field(default_factory=time.monotonic)

    def add(self, batch: np.ndarray) -> None:
        self.kinds += np.bincount(batch["kind"], minlength=len(KIND_NAMES))[: len(KIND_NAMES)]
        per_vcpu = np.bincount(batch["vcpu"])
        if len(per_vcpu) > len(self.vcpus):
            self.vcpus = np.concatenate([self.vcpus, np.zeros(len(per_vcpu) - len(self.vcpus), np.int64)])
        self.vcpus[: len(per_vcpu)] += per_vcpu
        for kind, column in ((KIND_LOAD, 0), (KIND_STORE, 1)):
            sel = batch["kind"] == kind
            if sel.any():
                pages, counts = np.unique(batch["vaddr"][sel] >> np.uint64(self.page_shift), return_counts=True)
                for page, count in zip(pages.tolist(), counts.tolist(), strict=True):
                    self.pages.setdefault(page, [0, 0])[column] += count

    def frame(self, title: str, npages: int) -> Group:
        now = time.monotonic()
        dt = max(now - self.prev_time, 1e-9)
        if len(self.prev_vcpus) < len(self.vcpus):
            self.prev_vcpus = np.concatenate([self.prev_vcpus, np.zeros(len(self.vcpus) - len(self.prev_vcpus),
                                                                        np.int64)])
        kinds = Table("kind", "records", "records/s", box=box.SIMPLE, title="by kind")
        for name, total, prev in zip(KIND_NAMES, self.kinds, self.prev_kinds, strict=True):
            kinds.add_row(name, str(int(total)), f"{(total - prev) / dt:.0f}")
        vcpus = Table("vcpu", "records", "records/s", box=box.SIMPLE, title="by vCPU")
        for v, (total, prev) in enumerate(zip(self.vcpus, self.prev_vcpus, strict=True)):
            vcpus.add_row(str(v), str(int(total)), f"{(total - prev) / dt:.0f}")
        hot = Table("page", "accesses", "loads", "stores", box=box.SIMPLE, title="hottest pages")
        ranked = sorted(self.pages.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))[:npages]
        for page, (loads, stores) in ranked:
            hot.add_row(f"0x{page << self.page_shift:x}", str(loads + stores), str(loads), str(stores))
        self.prev_kinds, self.prev_vcpus, self.prev_time = self.kinds.copy(), self.vcpus.copy(), now
        return Group(title, kinds, vcpus, hot)


def _title(c: Consumer, tally: Tally, ended: bool) -> str:
    state = "recording ended" if ended else "running"
    joined = f", joined at pos {c.joined_at[2]}" if c.joined_at else ""
    return (f"memtap top {c.name}: {int(tally.kinds.sum())} records ({state}{joined}), "
            f"{c.lost} lost")


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0 or args.pages < 0 or args.iterations < 0:
        raise UserError("--interval must be positive; --pages and --iterations cannot be negative")
    if args.page_size < 1 or args.page_size & (args.page_size - 1):
        raise UserError(f"--page-size {args.page_size} is not a power of two")
    console = Console()
    tally = Tally(args.page_size.bit_length() - 1)
    with connect(args.ring, timeout=args.wait) as c, \
            Live(console=console, auto_refresh=False) if console.is_terminal else _Printer(console) as out:
        frames, ended = 0, False
        while not ended and (args.iterations == 0 or frames < args.iterations):
            deadline = time.monotonic() + args.interval
            while (left := deadline - time.monotonic()) > 0:
                try:
                    batch = c.next_batch(timeout=left)
                except TimeoutError:
                    break
                if batch is None:
                    ended = True
                    break
                tally.add(batch)
            frames += 1
            out.update(tally.frame(_title(c, tally, ended), args.pages), refresh=True)
        c.release()
    return 0


class _Printer:
    """Live's update() for a non-terminal stdout: print each frame in turn."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def update(self, renderable: Any, refresh: bool = True) -> None:
        self.console.print(renderable)
        self.console.print()

    def __enter__(self) -> _Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
