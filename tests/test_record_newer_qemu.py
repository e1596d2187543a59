"""What a QEMU >= 10.2 adds, detected at run time by the same plugin build: exact physical addresses of
instruction fetches with the MMU on (qemu_plugin_translate_vaddr, 10.1) and exceptions and interrupts from the
discontinuity callbacks (10.2), including the x86 ones QEMU 10.0 does not show.

The newer QEMU is built by scripts/build-newer-qemu.sh (guestlib.newer_qemu); expected values come from the guests'
ELF symbols, and where 10.0 already gives a value, from the same guest run under the distribution's QEMU 10.0.
"""

from __future__ import annotations

import numpy as np
import pytest
from guestlib import guest, instructions, newer_qemu, record, symbols

import memtap
from memtap.trace import layout as L

MMU_ARCHES = ("x86_64", "aarch64", "riscv64")   # the targets scripts/build-newer-qemu.sh builds


def trace_of(tmp_path, arch, program, *options, qemu=None, name="t"):
    path = tmp_path / f"{name}.trace"
    proc = record(path, arch, program, *options, qemu=qemu)
    assert proc.returncode == 0, proc.stderr
    return memtap.open(path)


def exceptions(trace):
    """(pc, vaddr, flags, value, icount) of each exception record."""
    return [tuple(int(r[k]) for k in ("pc", "vaddr", "flags", "value", "icount"))
            for r in trace.records(kinds="exception")]


@pytest.mark.parametrize("arch", MMU_ARCHES)
def test_fetch_physical_addresses_with_the_mmu_on(tmp_path, arch):
    """The `mmu` guest runs, with its MMU on, identity-mapped code and then mmu_code through the alias
    mmu_code_virt: every fetch has its exact physical address, the alias's that of mmu_code in the ELF."""
    elf = guest(arch, "mmu")
    sym = symbols(elf)
    trace = trace_of(tmp_path, arch, "mmu", "--start-on-marker", qemu=newer_qemu(arch))
    assert trace.info["fetch_paddr"] == "translated"
    recs = trace.records()
    fetches = recs[recs["kind"] == L.KIND_FETCH]
    assert (fetches["flags"] & L.RF_PADDR).all()
    got = [(int(r["pc"]), int(r["vaddr"]), int(r["paddr"]), int(r["size"])) for r in fetches]
    alias = sym["mmu_code_virt"] - sym["mmu_code"]
    assert sym["mmu_code_virt"] != sym["mmu_code"]
    assert got == (
        [(pc, pc, pc, size) for pc, size in instructions(arch, elf, sym["mmu_st"], sym["mmu_code_back"])]
        + [(pc + alias, pc + alias, pc, size)
           for pc, size in instructions(arch, elf, sym["mmu_code"], sym["mmu_code_end"])]
    )
    # The data accesses are what test_record_mmu checks under QEMU 10.0.
    data = recs[(recs["kind"] == L.KIND_LOAD) | (recs["kind"] == L.KIND_STORE)]
    virt, phys = sym["mmu_virt"], sym["mmu_phys"]
    assert [(int(r["pc"]), int(r["vaddr"]), int(r["paddr"])) for r in data] == [
        (sym["mmu_st"], virt + 8, phys + 8), (sym["mmu_ld"], virt + 8, phys + 8),
        (sym["mmu_ld_phys"], phys + 8, phys + 8)]


def test_fetch_physical_addresses_need_physical_addressing(tmp_path):
    """--addr virtual records no physical address of any kind, translated or not."""
    trace = trace_of(tmp_path, "riscv64", "mmu", "--start-on-marker", "--addr", "virtual",
                     qemu=newer_qemu("riscv64"))
    assert trace.info["fetch_paddr"] == "untranslated"
    recs = trace.records()
    assert len(recs) > 0 and not (recs["flags"][recs["kind"] == L.KIND_FETCH] & L.RF_PADDR).any()


def test_x86_exception_at_a_blocks_end(tmp_path):
    """x86_64 `fault`: the ud2 that ends its block, invisible to QEMU 10.0 (test_record_exceptions), is one
    exception record: from the ud2 to the #UD handler, no cause (x86 exposes none), not an interrupt."""
    sym = symbols(guest("x86_64", "fault"))
    trace = trace_of(tmp_path, "x86_64", "fault", "--start-on-marker", qemu=newer_qemu("x86_64"))
    assert trace.info["exceptions"] == "discontinuity"
    recs = trace.records()
    exc = np.flatnonzero(recs["kind"] == L.KIND_EXCEPTION)
    assert len(exc) == 1 and trace.end["records"]["exception"] == 1
    i = int(exc[0])
    assert (int(recs[i]["pc"]), int(recs[i]["vaddr"]), int(recs[i]["flags"])) == (
        sym["handler_begin"], sym["fault_insn"], 0)
    assert [(int(r["kind"]), int(r["pc"])) for r in recs[i - 1 : i + 2]] == [
        (L.KIND_FETCH, sym["fault_insn"]), (L.KIND_EXCEPTION, sym["handler_begin"]),
        (L.KIND_FETCH, sym["handler_begin"])]
    assert recs[i]["icount"] == recs[i - 1]["icount"]


def test_x86_exception_in_a_blocks_middle(tmp_path):
    """x86_64 `gpfault`: the #GP that QEMU 10.0 already shows (as an early exit) is the same single record."""
    sym = symbols(guest("x86_64", "gpfault"))
    old = trace_of(tmp_path, "x86_64", "gpfault", "--start-on-marker", name="old")
    new = trace_of(tmp_path, "x86_64", "gpfault", "--start-on-marker", qemu=newer_qemu("x86_64"), name="new")
    # icount differs: it counts from reset, and the two QEMUs' boot code differs.
    assert [e[:4] for e in exceptions(new)] == [e[:4] for e in exceptions(old)] == [
        (sym["gp_handler"], sym["gp_insn"], 0, 0)]


def test_x86_interrupt(tmp_path):
    """x86_64 `irq`: the local APIC timer's interrupt, taken after `sti; hlt`, is one record with the interrupt
    flag, from irq_after (the instruction it interrupted) to irq_handler. QEMU 10.0 shows none (the hlt ends its
    block, and the handler's EOI store, which ends a block early, is not mistaken for a trap)."""
    sym = symbols(guest("x86_64", "irq"))
    old = trace_of(tmp_path, "x86_64", "irq", "--start-on-marker", name="old")
    assert exceptions(old) == []
    trace = trace_of(tmp_path, "x86_64", "irq", "--start-on-marker", qemu=newer_qemu("x86_64"), name="new")
    recs = trace.records()
    exc = np.flatnonzero(recs["kind"] == L.KIND_EXCEPTION)
    assert len(exc) == 1
    i = int(exc[0])
    assert (int(recs[i]["pc"]), int(recs[i]["vaddr"]), int(recs[i]["flags"])) == (
        sym["irq_handler"], sym["irq_after"], L.RF_INTERRUPT)
    assert [(int(r["kind"]), int(r["pc"])) for r in recs[i - 1 : i + 2]] == [
        (L.KIND_FETCH, sym["irq_hlt"]), (L.KIND_EXCEPTION, sym["irq_handler"]), (L.KIND_FETCH, sym["irq_handler"])]
    fetched = recs["pc"][recs["kind"] == L.KIND_FETCH].tolist()
    assert fetched[-1] == sym["irq_after"] and sym["irq_handler_ret"] in fetched


@pytest.mark.parametrize(("arch", "program"), [
    ("riscv64", "fault"), ("riscv64", "priv"), ("aarch64", "fault"), ("aarch64", "priv")])
def test_same_records_as_qemu_10_0(tmp_path, arch, program):
    """Where QEMU 10.0 finds traps at their vectors, the discontinuity callbacks give the very same trace between
    the markers (before them, QEMU's own boot code differs between versions): every record, exceptions with their
    causes included."""
    old = trace_of(tmp_path, arch, program, "--start-on-marker", name="old")
    new = trace_of(tmp_path, arch, program, "--start-on-marker", qemu=newer_qemu(arch), name="new")
    assert (old.info["exceptions"], new.info["exceptions"]) == ("vector", "discontinuity")
    assert len(exceptions(new)) >= 1
    a, b = old.records(), new.records()
    assert len(a) == len(b) and (a == b).all()


def test_data_only_mode_keeps_exceptions(tmp_path):
    """With only loads and stores traced (no block callbacks), a conditional callback at the handler's block
    still records the exception, with the same icount as a full trace (RISC-V: boot is deterministic)."""
    qemu = newer_qemu("riscv64")
    full = trace_of(tmp_path, "riscv64", "fault", "--start-on-marker", qemu=qemu, name="full")
    data = trace_of(tmp_path, "riscv64", "fault", "--start-on-marker", "--events", "load,store", qemu=qemu,
                    name="data")
    assert len(exceptions(full)) == 1 and exceptions(data) == exceptions(full)


def test_data_only_mode_x86_exception(tmp_path):
    """x86_64 `fault` with only loads and stores: the #UD is a record whose icount is the ud2's, one before that
    of the handler's first instruction, which loads and stores the saved RIP (SeaBIOS's boot is not
    deterministic, so icounts cannot be compared with another run)."""
    sym = symbols(guest("x86_64", "fault"))
    recs = trace_of(tmp_path, "x86_64", "fault", "--start-on-marker", "--events", "load,store",
                    qemu=newer_qemu("x86_64")).records()
    got = [(int(r["kind"]), int(r["pc"])) for r in recs[:3]]
    assert got == [(L.KIND_EXCEPTION, sym["handler_begin"]), (L.KIND_LOAD, sym["handler_begin"]),
                   (L.KIND_STORE, sym["handler_begin"])]
    assert int(recs[0]["vaddr"]) == sym["fault_insn"]
    assert recs["icount"][1] == recs["icount"][2] == recs["icount"][0] + 1
