"""A block left early by a fault: only the instructions that started are fetched, then the handler, then the rest.

The `fault` guest executes an undefined instruction in the middle of a straight-line block; its trap handler
advances the saved PC and returns. Expected fetches come from the ELF.
"""

from __future__ import annotations

import pytest
from guestlib import ALL_ARCHES, guest, instruction_at, instructions, record, symbols

import memtap
from memtap.trace.layout import KIND_EXCEPTION, KIND_FETCH


@pytest.mark.parametrize("arch", ALL_ARCHES)
def test_fault_mid_block_fetches(tmp_path, arch):
    elf = guest(arch, "fault")
    sym = symbols(elf)
    trace_path = tmp_path / "fault.trace"
    proc = record(trace_path, arch, "fault", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(trace_path).records()
    fetched = [int(pc) for pc in recs["pc"][recs["kind"] == KIND_FETCH]]
    handler_ret = instruction_at(arch, elf, sym["handler_ret"])
    expected = (
        instructions(arch, elf, sym["fault_begin"], sym["fault_after"])  # up to and including the faulting one
        + instructions(arch, elf, sym["handler_begin"], sym["handler_ret"])
        + [handler_ret]
        + instructions(arch, elf, sym["fault_after"], sym["fault_end"])
    )
    assert fetched == [pc for pc, _ in expected]
    assert instruction_at(arch, elf, sym["fault_insn"])[0] in fetched
    # Exceptions are records of their own (tests/test_record_exceptions.py); here only accesses count.
    data = recs[(recs["kind"] != KIND_FETCH) & (recs["kind"] != KIND_EXCEPTION)]
    if arch in ("x86_64", "i386"):
        # The handler's `add $2, (%esp/%rsp)` and `iret` read and write the exception frame; the CPU's own pushes
        # while delivering the exception are not instructions and are not traced.
        assert set(data["pc"].tolist()) <= {sym["handler_begin"], sym["handler_ret"]}
    else:
        assert len(data) == 0
