"""ChampSim's instruction traces: one 64-byte ``input_instr`` per executed instruction (inc/trace_instruction.h:
ip, is_branch, branch_taken, 2 destination and 4 source registers, 2 destination and 4 source memory
addresses), one trace per core, xz-compressed when the name ends in .xz. Registers come from capstone's decoding
of the guest's ELF, with ChampSim's special registers (stack pointer 6, flags 25, instruction pointer 26) set so
that ChampSim infers each branch's type (isa.py); memory operands are the instruction's loads and stores."""

from __future__ import annotations

import contextlib

import numpy as np

from memtap.export import native
from memtap.export.isa import decoder_for
from memtap.export.stream import (
    Drops,
    Options,
    Source,
    Warn,
    check_per_vcpu_output,
    columns_for,
    empty_output_unless_per_vcpu,
    output_file,
    per_vcpu_path,
    split_by_vcpu,
)

NAME = "champsim"
SUMMARY = "ChampSim input_instr records (xz by name), one trace per core"


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the selection; returns the instructions written."""
    check_per_vcpu_output(NAME, out, source)
    source.require(NAME, "fetch")
    lib = native.lib()
    decoder = decoder_for(NAME, source, opts, warn)
    pcmap = native.PcMap(decoder.describe)
    drops = Drops()
    names = columns_for(opts, "kind", "size", "flags", "value", "pc", "vcpu")
    states: dict[int, native.ChampsimState] = {}
    files = {}
    written = 0
    buf = np.empty(0, native.CHAMPSIM_INSTR)
    with contextlib.ExitStack() as stack:
        def emit(vcpu: int, cols: dict[str, np.ndarray], final: int) -> None:
            nonlocal written, buf
            if vcpu not in files:
                files[vcpu] = stack.enter_context(output_file(per_vcpu_path(out, vcpu)))
                states[vcpu] = native.ChampsimState()
            batch = native.Batch(cols, opts.addr_column, opts.time)
            idx = pcmap.find(cols["pc"], cols["kind"])
            if len(buf) < batch.n + 1:
                buf = np.empty(batch.n + 1, native.CHAMPSIM_INSTR)
            n = lib.mx_champsim(batch.ref, idx.ctypes.data, pcmap.handle, states[vcpu], final, buf.ctypes.data,
                                drops.ptr)
            files[vcpu].write(memoryview(buf[:n]).cast("B"))
            written += n

        for cols in source.columns(names):
            for vcpu, part in split_by_vcpu(cols):
                emit(vcpu, part, 0)
        empty = {n: np.zeros(0, np.uint64) for n in names}
        for vcpu in list(files):
            emit(vcpu, empty, 1)
        if not files:
            empty_output_unless_per_vcpu(out, stack)
    pcmap.close()
    decoder.report("their instructions have no registers and are no branches")
    drops.report(NAME, warn, {"cmo": "cache operations other than zeroing and prefetches (no memory operand)"})
    return written
