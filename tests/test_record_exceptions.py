"""Exceptions as records: where the instruction stream jumped from, to which handler, and why.

QEMU 10.0 has no discontinuity callback for plugins: on RISC-V and AArch64 memtap recognises trap vector entries
(mtvec/stvec, VBAR_EL1) and reads the cause and return address from the trap registers; on x86 it sees only
exceptions that leave a block in its middle. Expected values come from the guests' ELF symbols and the ISA's
cause encodings.
"""

from __future__ import annotations

import pytest
from guestlib import guest, instructions, record, symbols

import memtap
from memtap.trace import layout as L


def records(tmp_path, arch, program, *options):
    path = tmp_path / f"{program}.trace"
    proc = record(path, arch, program, *options)
    assert proc.returncode == 0, proc.stderr
    return memtap.open(path)


def around(recs, i):
    """(kind, pc) of the records just before and after record i."""
    return [(L.KIND_NAMES[r["kind"]], int(r["pc"])) for r in recs[i - 1 : i + 2]]


@pytest.mark.parametrize(("arch", "cause_ok"), [
    ("riscv64", lambda c: c == 2),          # mcause 2: illegal instruction
    ("riscv32", lambda c: c == 2),
    ("aarch64", lambda c: c >> 26 == 0),    # ESR_EL1.EC 0: unknown reason (UDF)
    ("arm", lambda c: c == 1),              # vector slot 1: undefined instruction
    ("arm-thumb", lambda c: c == 1),
    ("ppc", lambda c: c == 6),              # IVOR6: program interrupt
])
def test_fault_is_one_exception_record(tmp_path, arch, cause_ok):
    sym = {k: v & ~1 if arch == "arm-thumb" else v for k, v in symbols(guest(arch, "fault")).items()}
    trace = records(tmp_path, arch, "fault", "--start-on-marker")
    assert trace.info["exceptions"] == "vector"
    recs = trace.records()
    exc = [i for i, r in enumerate(recs) if r["kind"] == L.KIND_EXCEPTION]
    assert len(exc) == 1
    r = recs[exc[0]]
    assert (int(r["pc"]), int(r["vaddr"])) == (sym["handler_begin"], sym["fault_insn"])
    assert r["flags"] & L.RF_VALUE and not r["flags"] & L.RF_INTERRUPT and cause_ok(int(r["value"]))
    # It sits between the faulting instruction's fetch and the handler's first fetch, with the faulting one's icount.
    assert around(recs, exc[0]) == [("fetch", sym["fault_insn"]), ("exception", sym["handler_begin"]),
                                    ("fetch", sym["handler_begin"])]
    assert r["icount"] == recs[exc[0] - 1]["icount"]
    assert trace.end["records"]["exception"] == 1


@pytest.mark.parametrize(("arch", "cause", "priv"), [
    ("riscv64", 8, L.PRIV_MACHINE),         # mcause 8: environment call from U-mode
    ("aarch64", 0x56000000, L.PRIV_SUPERVISOR),  # ESR_EL1: EC 0x15 (SVC64), IL, imm16 0 (vaddr: the svc, not ELR)
    ("arm", 2, L.PRIV_SUPERVISOR),          # vector slot 2: SVC
    ("arm-thumb", 2, L.PRIV_SUPERVISOR),
    ("ppc", 8, L.PRIV_SUPERVISOR),          # IVOR8: system call (vaddr: the sc, though SRR0 is the next insn)
])
def test_system_call_from_user_mode(tmp_path, arch, cause, priv):
    """The `priv` guests: user-mode code traps back into the kernel (ecall, svc, sc); vaddr is that instruction."""
    sym = {k: v & ~1 if arch == "arm-thumb" else v for k, v in symbols(guest(arch, "priv")).items()}
    recs = records(tmp_path, arch, "priv").records(kinds="exception")
    assert [(int(r["vaddr"]), int(r["value"]), int(r["priv"])) for r in recs] == [(sym["user_ecall"], cause, priv)]


def test_data_only_mode_keeps_exceptions(tmp_path):
    sym = symbols(guest("riscv64", "fault"))
    trace = records(tmp_path, "riscv64", "fault", "--start-on-marker", "--events", "load,store")
    recs = trace.records()
    assert [(L.KIND_NAMES[r["kind"]], int(r["pc"]), int(r["vaddr"]), int(r["value"])) for r in recs] == [
        ("exception", sym["handler_begin"], sym["fault_insn"], 2)]
    full = records(tmp_path / "..", "riscv64", "fault", "--start-on-marker").records(kinds="exception")
    assert recs["icount"].tolist() == full["icount"].tolist()


def test_x86_exception_in_a_blocks_middle(tmp_path):
    """x86_64 `gpfault`: a non-canonical load raises #GP mid-block; the record has no cause (no IDT access)."""
    sym = symbols(guest("x86_64", "gpfault"))
    trace = records(tmp_path, "x86_64", "gpfault", "--start-on-marker")
    assert trace.info["exceptions"] == "early-exit"
    recs = trace.records()
    exc = [i for i, r in enumerate(recs) if r["kind"] == L.KIND_EXCEPTION]
    assert len(exc) == 1
    r = recs[exc[0]]
    assert (int(r["pc"]), int(r["vaddr"]), int(r["flags"])) == (sym["gp_handler"], sym["gp_insn"], 0)
    assert around(recs, exc[0]) == [("fetch", sym["gp_insn"]), ("exception", sym["gp_handler"]),
                                    ("fetch", sym["gp_handler"])]


def test_x86_exception_at_a_blocks_end_is_not_seen(tmp_path):
    """x86_64 `fault`: ud2 ends its block, so QEMU 10.0 gives a plugin no sign of the #UD (documented)."""
    trace = records(tmp_path, "x86_64", "fault", "--start-on-marker")
    assert len(trace.records(kinds="exception")) == 0


def test_mmio_access_that_qemu_reexecutes_alone_keeps_its_place(tmp_path):
    """x86_64 `irq`: the handler's store to the APIC's EOI register makes QEMU abandon the block at that
    instruction and re-execute it alone in a block that reports only its accesses (cpu_io_recompile). The
    instruction's fetch still comes first, once, and its store carries its icount."""
    elf = guest("x86_64", "irq")
    sym = symbols(elf)
    insns = instructions("x86_64", elf, sym["irq_handler"], sym["irq_handler_ret"] + 2)   # iretq: 2 bytes
    recs = records(tmp_path, "x86_64", "irq", "--start-on-marker").records()
    first = next(i for i, r in enumerate(recs) if r["kind"] == L.KIND_FETCH and r["pc"] == sym["irq_handler"])
    got = [(L.KIND_NAMES[r["kind"]], int(r["pc"]), int(r["vaddr"]), int(r["size"]), int(r["icount"]))
           for r in recs[first:first + 6]]
    icount = int(recs[first]["icount"])
    (mov, _), (eoi, _), (flag, _), (iret, _) = insns
    assert got == [
        ("fetch", mov, mov, insns[0][1], icount),
        ("fetch", eoi, eoi, insns[1][1], icount + 1),
        ("store", eoi, 0xFEE000B0, 4, icount + 1),
        ("fetch", flag, flag, insns[2][1], icount + 2),
        ("store", flag, sym["irq_seen"], 4, icount + 2),
        ("fetch", iret, iret, insns[3][1], icount + 3),
    ]


@pytest.mark.parametrize(("arch", "program"), [("x86_64", "gpfault"), ("x86_64", "irq"), ("riscv64", "priv"),
                                               ("aarch64", "priv")])
def test_data_only_icount_survives_blocks_left_early(tmp_path, arch, program):
    """Data-only mode counts instructions per block and corrects the count when a block is left early (a fault, an
    interrupt, a system call, an MMIO store QEMU re-executes alone): every access has the full trace's icount."""
    def data(events):
        (tmp_path / events).mkdir()
        recs = records(tmp_path / events, arch, program, "--start-on-marker", "--events", events).records(
            kinds="load,store")
        start = int(recs[0]["icount"])   # x86's BIOS runs a slightly different number of instructions each time
        return [(int(r["kind"]), int(r["pc"]), int(r["vaddr"]), int(r["size"]), int(r["icount"]) - start)
                for r in recs]

    only = data("load,store")
    assert only == data("fetch,load,store")
    assert len(only) >= 3
