"""Chrome's trace-event JSON (the format of chrome://tracing, which Perfetto's UI and ``uftrace dump --chrome``
also speak): one process, the machine, with one thread track per vCPU (tid = vCPU + 1) holding

* function spans, ``B``/``E`` events from the calls and returns of each vCPU (with --elf; calls.py),
* markers (``MEMTAP_MARK(n)``) and exceptions and interrupts as thread-scoped instant events (``i``),
* per-vCPU counters (``C``) of fetches, loads and stores per ``--interval`` units of ``--time``.

Timestamps are in microseconds, one unit of ``--time`` being one nanosecond (``displayTimeUnit`` "ns").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

import numpy as np

from memtap.export import native
from memtap.export.calls import CallTracker
from memtap.export.stream import Options, Source, Warn, columns_for, output_file, split_by_vcpu
from memtap.trace import layout as L

NAME = "chrome"
SUMMARY = "Chrome trace-event JSON (Perfetto): function spans, markers, exceptions, access counters per vCPU"
PID = 1
_SPAN = 96   # bytes of one B/E line besides the name


def ts(t: int) -> float:
    """A --time value (nanoseconds) as trace-event microseconds (exact below 2^53 ns)."""
    return t / 1000


def event(**fields: object) -> str:
    return ",\n" + json.dumps(fields, separators=(",", ":"))


class Counters:
    """Accesses per interval of one vCPU, emitted as C events when an interval is complete."""

    def __init__(self, vcpu: int, interval: int) -> None:
        self.name = f"accesses vCPU {vcpu}"
        self.interval = interval
        self.bin: int | None = None
        self.counts = np.zeros(3, np.int64)

    def _emit(self, b: int, counts: np.ndarray) -> str:
        return event(name=self.name, ph="C", pid=PID, ts=ts(b * self.interval),
                     args={"fetch": int(counts[0]), "load": int(counts[1]), "store": int(counts[2])})

    def feed(self, time: np.ndarray, kind: np.ndarray) -> Iterator[str]:
        access = kind <= L.KIND_STORE
        bins = time[access] // np.uint64(self.interval)
        keys, counts = np.unique(bins * np.uint64(3) + kind[access].astype(np.uint64), return_counts=True)
        for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
            b = key // 3
            if self.bin is not None and b != self.bin:
                yield from self.flush(b)
            self.bin = b
            self.counts[key % 3] += n

    def flush(self, following: int | None = None) -> Iterator[str]:
        """The current interval's counts; a zero at the next interval when the one that follows is later."""
        if self.bin is None:
            return
        yield self._emit(self.bin, self.counts)
        if following is None or following > self.bin + 1:
            yield self._emit(self.bin + 1, np.zeros(3, np.int64))
        self.counts[:] = 0
        self.bin = None


def instants(vcpu: int, cols: dict[str, np.ndarray], time: str) -> Iterator[str]:
    """Markers, exceptions and interrupts of one vCPU's records."""
    kind = cols["kind"]
    for i in np.flatnonzero((kind == L.KIND_MARKER) | (kind == L.KIND_EXCEPTION)).tolist():
        t = int(cols[time][i])
        flags = int(cols["flags"][i])
        if kind[i] == L.KIND_MARKER:
            yield event(name=f"MEMTAP_MARK({int(cols['value'][i]):#x})", ph="i", s="t", pid=PID, tid=vcpu + 1,
                        ts=ts(t), args={"pc": f"{int(cols['pc'][i]):#x}"})
            continue
        args = {"handler": f"{int(cols['pc'][i]):#x}"}
        if not flags & L.RF_NOADDR:
            args["from"] = f"{int(cols['vaddr'][i]):#x}"
        if flags & L.RF_VALUE:
            args["cause"] = f"{int(cols['value'][i]):#x}"
        yield event(name="interrupt" if flags & L.RF_INTERRUPT else "exception", ph="i", s="t", pid=PID,
                    tid=vcpu + 1, ts=ts(t), args=args)


class Spans:
    """B/E lines of call events, formatted by the core."""

    def __init__(self, names: list[str]) -> None:
        escaped = [json.dumps(n)[1:-1].encode() for n in names] or [b""]
        self.width = max(len(n) for n in escaped) + _SPAN
        offsets = np.cumsum([0] + [len(n) + 1 for n in escaped])[:-1]
        self.blob = np.frombuffer(b"\0".join(escaped) + b"\0", np.uint8)
        self.offsets = np.ascontiguousarray(offsets, np.uint64)

    def lines(self, vcpu: int, ev: np.ndarray) -> bytes:
        buf = np.empty(len(ev) * self.width + 1, np.uint8)
        n = native.lib().mx_chrome_calls(ev.ctypes.data, len(ev), self.blob.ctypes.data, self.offsets.ctypes.data,
                                         PID, vcpu + 1, buf.ctypes.data)
        return buf[:n].tobytes()


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the events written."""
    tracker = CallTracker(NAME, source, opts, warn) if opts.elf else None
    if tracker is None:
        warn(f"{NAME}: no --elf: no function spans (markers, exceptions and counters only)")
    spans = Spans(tracker.names) if tracker else None
    counters: dict[int, Counters] = {}
    events = 0
    extra = ("flags", "value", "vaddr")

    def parts() -> Iterator[tuple[int, np.ndarray | None, dict[str, np.ndarray]]]:
        if tracker is not None:
            yield from tracker.events(*extra)
            return
        for cols in source.columns(columns_for(opts, "kind", "pc", "vcpu", *extra)):
            for vcpu, part in split_by_vcpu(cols):
                yield vcpu, None, part

    with output_file(out) as f:
        f.write(b'{"displayTimeUnit":"ns","traceEvents":[\n')
        f.write(json.dumps({"name": "process_name", "ph": "M", "pid": PID,
                            "args": {"name": f"memtap {source.name}"}}).encode())
        for vcpu, ev, cols in parts():
            if vcpu not in counters:
                counters[vcpu] = Counters(vcpu, opts.interval)
                events += _lines(f, [event(name="thread_name", ph="M", pid=PID, tid=vcpu + 1,
                                           args={"name": f"vCPU {vcpu}"})])
            if ev is not None and len(ev):
                f.write(spans.lines(vcpu, ev))
                events += len(ev)
            if cols:
                events += _lines(f, instants(vcpu, cols, opts.time))
                events += _lines(f, counters[vcpu].feed(cols[opts.time], cols["kind"]))
        for c in counters.values():
            events += _lines(f, c.flush())
        f.write(b"\n]}\n")
    if tracker is not None:
        tracker.finish("no function spans for them")
    return events


def _lines(f: IO[bytes], lines: Iterator[str] | list[str]) -> int:
    n = 0
    for line in lines:
        f.write(line.encode())
        n += 1
    return n
