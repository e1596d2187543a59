"""What every simulator and timeline exporter shares: where records come from (a trace file or a live ring),
the options that say which address and which clock a format gets, the count of what a format could not hold,
and output files that appear only when complete (compressed by their name's suffix).
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from memtap.errors import UserError
from memtap.export import native
from memtap.export.tabular import atomic_output
from memtap.trace import layout as L

Warn = Callable[[str], None]


@dataclass
class Options:
    """How a format is written. ``address``: which address the records give (virtual or physical); ``time``:
    the clock of cycles and timestamps (the vCPU's instruction count, or the global position); ``line``: the
    cache-line size of whole-line operations; the rest is read only by the formats that need it."""

    address: str = "virtual"
    time: str = "icount"
    line: int = 64
    elf: list[Any] = field(default_factory=list)
    interval: int = 10000
    cache: Any = None

    @property
    def addr_column(self) -> str:
        return "paddr" if self.address == "physical" else "vaddr"


@dataclass
class Source:
    """Records to export: ``columns(names)`` yields dicts of equal-length numpy arrays (only the names asked
    for, in the selection's order). ``vcpus``: the vCPUs the selection can contain, when known in advance."""

    columns: Callable[[list[str]], Iterator[dict[str, np.ndarray]]]
    arch: str | None
    vcpus: list[int] | None
    name: str
    kinds: frozenset[int] | None = None   # the kinds selected (None: all)
    events: list[str] | None = None       # the events recorded, when known (a file's INFO)

    def require(self, fmt: str, kind: str) -> None:
        """A format that needs records of one kind refuses a selection or a recording without them."""
        if self.kinds is not None and L.KIND_NAMES.index(kind) not in self.kinds:
            raise UserError(f"{fmt} needs {kind} records: add {kind} to --kinds")
        if self.events is not None and kind not in self.events:
            raise UserError(f"{fmt} needs {kind} records, and {self.name} was recorded with --events "
                            f"{','.join(self.events)}")


def trace_source(trace: Any, selection: dict[str, Any]) -> Source:
    """A trace file's records, selected as ``memtap view`` selects them (kinds, vcpus, ranges, order)."""
    wanted = None if selection.get("vcpus") is None else set(selection["vcpus"])
    vcpus = [v for v in trace.vcpus if wanted is None or v in wanted]

    def columns(names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        return trace.columns(names, **selection)

    from memtap.trace.reader import parse_kinds

    return Source(columns, trace.arch, vcpus, str(trace.path), parse_kinds(selection.get("kinds")),
                  trace.info.get("events"))


def ring_source(name: str, selection: dict[str, Any], arch: str | None) -> Source:
    """A live ring's records as they are published (in the file's order: each vCPU's in program order), filtered
    by the same selection as a file; each batch is used up before the next is asked for."""
    from memtap.live.ring import connect
    from memtap.trace.reader import parse_kinds

    kinds = parse_kinds(selection.get("kinds"))
    vcpus = selection.get("vcpus")

    def columns(names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        with connect(name) as consumer:
            for batch in consumer:
                keep = np.ones(len(batch), bool)
                if kinds is not None:
                    keep &= np.isin(batch["kind"], list(kinds))
                if vcpus is not None:
                    keep &= np.isin(batch["vcpu"], list(vcpus))
                for col, span in (("pos", selection.get("pos_range")), ("vaddr", selection.get("addr_range"))):
                    if span is not None:
                        lo, hi = span
                        if lo is not None:
                            keep &= batch[col] >= np.uint64(lo)
                        if hi is not None:
                            keep &= batch[col] < np.uint64(hi)
                        if col == "vaddr":
                            keep &= batch["kind"] != L.KIND_MARKER
                part = batch if keep.all() else batch[keep]
                if len(part):
                    yield {n: np.ascontiguousarray(part[n]) for n in names}

    return Source(columns, arch, None if vcpus is None else sorted(vcpus), f"ring {name}", kinds)


# What each drop reason means, for the one-line report.
_DROP_TEXT = {
    "marker": "marker records (the format has no markers)",
    "exception": "exception records (the format has no exceptions)",
    "cmo": "cache operations the format has no label for",
    "no_paddr": "records without a physical address (--address physical)",
    "wide_addr": "records whose address does not fit the format",
    "zero_addr": "memory operands at address 0 (0 means an empty slot in the format)",
    "memops": "memory operands beyond the format's slots for one instruction",
    "orphan": "accesses whose instruction's fetch is not in the selection",
}


class Drops:
    """Counts of what a format could not hold, by reason (native.DROPS); reported once, at the end."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(native.DROPS), np.uint64)

    @property
    def ptr(self) -> int:
        return self.counts.ctypes.data

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[native.DROPS.index(reason)] += np.uint64(n)

    def as_dict(self) -> dict[str, int]:
        return {r: int(c) for r, c in zip(native.DROPS, self.counts, strict=True) if c}

    def report(self, fmt: str, warn: Warn, extra: dict[str, str] | None = None) -> None:
        """One line per reason: what was dropped and why."""
        for reason, n in self.as_dict().items():
            what = (extra or {}).get(reason) or _DROP_TEXT[reason]
            warn(f"{fmt}: dropped {n} {what}")


def stderr_warn(message: str) -> None:
    print(f"memtap: {message}", file=sys.stderr)


@contextlib.contextmanager
def output_file(path: str) -> Iterator[IO[bytes]]:
    """A binary stream to ``path`` ('-' = stdout) that appears under its name only when complete; '.xz' and
    '.gz' names are compressed (xz as ChampSim's traces are, gzip as gem5 reads its '.gz' traces)."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(path) as tmp:
        try:
            if path.endswith(".xz"):
                f: IO[bytes] = lzma.open(tmp, "wb", preset=1)
            elif path.endswith(".gz"):
                f = gzip.open(tmp, "wb", compresslevel=1)
            else:
                f = open(tmp, "wb", buffering=1 << 20)
            with f:
                yield f
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def per_vcpu_path(pattern: str, vcpu: int) -> str:
    """The file of one vCPU: ``{vcpu}`` in the output name replaced by its index."""
    return pattern.replace("{vcpu}", str(vcpu))


def check_per_vcpu_output(fmt: str, pattern: str, source: Source) -> None:
    """Formats with one trace per core need one vCPU, or ``{vcpu}`` in the output name."""
    if "{vcpu}" in pattern:
        return
    if source.vcpus is None or len(source.vcpus) > 1:
        have = "several vCPUs" if source.vcpus is None else f"vCPUs {','.join(map(str, source.vcpus))}"
        raise UserError(f"{fmt} writes one trace per core and the selection has {have}: put {{vcpu}} in the "
                        "output name (e.g. -o core{vcpu}.trace) or select one with --vcpu N")


def empty_output_unless_per_vcpu(pattern: str, stack: contextlib.ExitStack) -> None:
    """A per-core format whose selection had no records still leaves its (one, empty) output file."""
    if "{vcpu}" not in pattern:
        stack.enter_context(output_file(pattern))


def split_by_vcpu(cols: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The batch's records of each vCPU, in their order (one vCPU: the batch itself)."""
    vcpu = cols["vcpu"]
    first = int(vcpu[0])
    if not (vcpu != first).any():
        yield first, cols
        return
    for v in np.unique(vcpu).tolist():
        keep = vcpu == v
        yield v, {n: a[keep] for n, a in cols.items()}


def write_batches(source: Source, out: str, names: list[str], opts: Options, addr_bits: int, per_record: int,
                  encode: Callable[[native.Batch, np.ndarray, Drops], int], header: bytes = b"",
                  finish: Callable[[Drops], bytes] | None = None) -> tuple[int, Drops]:
    """Stream every batch of the selection through a native encoder into ``out``: ``encode`` fills a buffer of
    ``per_record`` bytes per record and returns the bytes it wrote; ``finish`` returns a tail. Returns the
    bytes written and what was dropped."""
    drops = Drops()
    written = 0
    buf = np.empty(0, np.uint8)
    with output_file(out) as f:
        f.write(header)
        written += len(header)
        for cols in source.columns(names):
            batch = native.Batch(cols, opts.addr_column, opts.time, addr_bits)
            if len(buf) < batch.n * per_record + 64:
                buf = np.empty(batch.n * per_record + 64, np.uint8)
            n = encode(batch, buf, drops)
            f.write(memoryview(buf)[:n])
            written += n
        if finish is not None:
            tail = finish(drops)
            f.write(tail)
            written += len(tail)
    return written, drops


def columns_for(opts: Options, *names: str) -> list[str]:
    """The columns a format reads: its own, plus the address and clock the options choose."""
    wanted = [opts.addr_column, opts.time, *names]
    return list(dict.fromkeys(wanted))
