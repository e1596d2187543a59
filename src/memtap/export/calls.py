"""Function entries and exits of each vCPU, from its instruction fetches and the ELF's symbols: a fetch of a
function's first instruction right after a call instruction enters it (the frame remembers the address after
the call); a fetch right after a return instruction at the address a frame remembers exits that frame and every
frame above it (a return to no remembered address, such as an exception return, exits nothing). What is still
open when the selection ends exits at the vCPU's last time. The timeline formats (uftrace, chrome) share this.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from memtap.export import native
from memtap.export.isa import Decoder, decoder_for
from memtap.export.stream import Options, Source, Warn, columns_for, split_by_vcpu


class CallTracker:
    """Per-vCPU call stacks over a stream of batches; ``events(source)`` yields (vcpu, CALL_EVENT array,
    records of the batch part) for each batch part, then the closing exits of each vCPU."""

    def __init__(self, fmt: str, source: Source, opts: Options, warn: Warn) -> None:
        source.require(fmt, "fetch")
        self.lib = native.lib()
        self.source = source
        self.opts = opts
        self.decoder: Decoder = decoder_for(fmt, source, opts, warn)
        self.pcmap = native.PcMap(self.decoder.describe)
        self.states: dict[int, int] = {}
        self.last_time: dict[int, int] = {}

    @property
    def names(self) -> list[str]:
        """Function names, indexed as the events' ``func``."""
        return self.decoder.names

    def columns(self, *extra: str) -> list[str]:
        return columns_for(self.opts, "kind", "size", "pc", "vcpu", *extra)

    def feed(self, vcpu: int, cols: dict[str, np.ndarray]) -> np.ndarray:
        """The call events of one vCPU's records (in its program order)."""
        state = self.states.get(vcpu)
        if state is None:
            state = self.states[vcpu] = self.lib.mx_calls_new()
        batch = native.Batch(cols, self.opts.addr_column, self.opts.time)
        idx = self.pcmap.find(cols["pc"], cols["kind"])
        cap = batch.n + int(self.lib.mx_calls_depth(state)) + 1
        out = np.empty(cap, native.CALL_EVENT)
        n = self.lib.mx_calls(batch.ref, idx.ctypes.data, self.pcmap.handle, state, out.ctypes.data, cap)
        if batch.n:
            self.last_time[vcpu] = int(cols[self.opts.time][-1])
        return out[:n]

    def close(self, vcpu: int) -> np.ndarray:
        """Exits of the frames still open on a vCPU, at its last time."""
        state = self.states[vcpu]
        cap = int(self.lib.mx_calls_depth(state)) + 1
        out = np.empty(cap, native.CALL_EVENT)
        n = self.lib.mx_calls_close(state, self.last_time.get(vcpu, 0), out.ctypes.data, cap)
        return out[:n]

    def events(self, *extra: str) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        for cols in self.source.columns(self.columns(*extra)):
            for vcpu, part in split_by_vcpu(cols):
                yield vcpu, self.feed(vcpu, part), part
        for vcpu in sorted(self.states):
            yield vcpu, self.close(vcpu), {}

    def finish(self, what: str) -> None:
        for state in self.states.values():
            self.lib.mx_calls_free(state)
        self.states.clear()
        self.pcmap.close()
        self.decoder.report(what)
