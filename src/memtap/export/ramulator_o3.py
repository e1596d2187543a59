"""Ramulator 2's SimpleO3 core trace: what reaches memory after memtap's cache simulator, one line per read of
main memory (a miss of the last level): ``BUBBLES READ_ADDRESS [WRITEBACK_ADDRESS]``, decimal, where BUBBLES is
the count of the core's instructions since its previous line that did not reach memory. A write of main memory
(a dirty line written back, a written-through store) rides on the next read line of its vCPU, the way the
format pairs a fill with the eviction it caused; one per line, the others wait for the following lines. One
trace per core (SimpleO3 takes a trace per core), addresses line-aligned to the last level's line size.
"""

from __future__ import annotations

import contextlib
from collections import deque

import numpy as np

from memtap.analysis.cachesim import Simulator, preset
from memtap.export import native
from memtap.export.stream import (
    Drops,
    Options,
    Source,
    Warn,
    check_per_vcpu_output,
    empty_output_unless_per_vcpu,
    output_file,
    per_vcpu_path,
)
from memtap.trace import layout as L

NAME = "ramulator-o3"
SUMMARY = "Ramulator 2 SimpleO3 trace of last-level cache misses (memtap's cache simulator), one per core"
_COLUMNS = ["icount", "vaddr", "paddr", "pc", "value", "vcpu", "kind", "size", "flags"]
_LIMIT = 1 << 63   # SimpleO3 reads addresses with std::stoll


class Core:
    """One vCPU's lines: its last instruction count and the writes waiting for a read line."""

    def __init__(self) -> None:
        self.icount: int | None = None
        self.writes: deque[int] = deque()
        self.lines: list[str] = []


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Simulate the selection in its order and write each vCPU's memory reads; returns the lines written."""
    check_per_vcpu_output(NAME, out, source)
    config = opts.cache or preset("zen4")
    line = config.levels[-1].line
    mask = ~np.uint64(line - 1)
    drops = Drops()
    cores: dict[int, Core] = {}
    files = {}
    written = 0
    buf = np.empty(0, L.RECORD)
    with contextlib.ExitStack() as stack, Simulator(config) as sim:
        sim.log_memory()

        def flush(vcpu: int) -> None:
            nonlocal written
            core = cores[vcpu]
            if vcpu not in files:
                files[vcpu] = stack.enter_context(output_file(per_vcpu_path(out, vcpu)))
            files[vcpu].write("".join(core.lines).encode())
            written += len(core.lines)
            core.lines.clear()

        for cols in source.columns(_COLUMNS):
            if len(buf) < len(cols["kind"]):
                buf = np.empty(len(cols["kind"]), L.RECORD)
            log = sim.feed(native.Batch(cols).records(buf))
            if not len(log):
                continue
            # A record's writes first: the dirty line its own fill evicted rides on its read line.
            log = log[np.argsort(log["index"] * np.uint64(2) + (1 - log["write"]).astype(np.uint64), kind="stable")]
            icounts = cols["icount"][log["index"].astype(np.int64)].tolist()
            addrs = (log["addr"] & mask).tolist()
            for addr, write_, vcpu, icount in zip(addrs, log["write"].tolist(), log["vcpu"].tolist(), icounts,
                                                  strict=True):
                core = cores.get(vcpu) or cores.setdefault(vcpu, Core())
                if addr >= _LIMIT:
                    drops.add("wide_addr")
                    continue
                if write_:
                    core.writes.append(addr)
                    continue
                bubbles = 0 if core.icount is None else max(0, icount - core.icount - 1)
                core.icount = icount
                tail = f" {core.writes.popleft()}" if core.writes else ""
                core.lines.append(f"{bubbles} {addr}{tail}\n")
            for vcpu, core in cores.items():
                if core.lines:
                    flush(vcpu)
        for vcpu, core in sorted(cores.items()):
            drops.add("memops", len(core.writes))
            if vcpu not in files:
                flush(vcpu)
        if not files:
            empty_output_unless_per_vcpu(out, stack)
    drops.report(NAME, warn, {"memops": "writes of main memory after the last read of their core (no line to "
                                        "carry them)",
                              "wide_addr": "memory operations at addresses of 2^63 and above (SimpleO3 reads a "
                                           "signed 64-bit address)"})
    return written
