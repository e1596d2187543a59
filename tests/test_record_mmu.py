"""Virtual and physical addresses with the MMU on: the `mmu` guest maps the page at `mmu_virt` to the different
physical page `mmu_phys` (both ELF symbols), then stores and loads through the alias and loads the physical page
through its identity mapping. Each data record's vaddr and paddr must be exactly what the guest's tables say."""

from __future__ import annotations

import pytest
from guestlib import ALL_ARCHES, builder, guest, record, symbols

import memtap
from memtap.trace.layout import KIND_NAMES, PRIV_SUPERVISOR, RF_PADDR

MMU_ARCHES = [a for a in ALL_ARCHES if builder().has_program(a, "mmu")]


@pytest.mark.parametrize("arch", MMU_ARCHES)
def test_mmu_alias_virtual_and_physical_exact(tmp_path, arch):
    sym = symbols(guest(arch, "mmu"))
    virt, phys = sym["mmu_virt"], sym["mmu_phys"]
    assert virt != phys and virt % 4096 == 0 and phys % 4096 == 0
    trace_path = tmp_path / "mmu.trace"
    proc = record(trace_path, arch, "mmu", "--start-on-marker", "--events", "load,store")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(trace_path).records()
    got = [(KIND_NAMES[r["kind"]], int(r["pc"]), int(r["vaddr"]), int(r["paddr"]), int(r["size"])) for r in recs]
    assert got == [
        ("store", sym["mmu_st"], virt + 8, phys + 8, 4),
        ("load", sym["mmu_ld"], virt + 8, phys + 8, 4),
        ("load", sym["mmu_ld_phys"], phys + 8, phys + 8, 4),
    ]
    assert all(r["flags"] & RF_PADDR for r in recs)
    # x86 CPL 0, AArch64 EL1, RISC-V S-mode (the guest mrets from M into S to run with Sv39).
    assert set(recs["priv"].tolist()) == {PRIV_SUPERVISOR}


@pytest.mark.parametrize("arch", MMU_ARCHES)
def test_fetches_with_the_mmu_on_have_no_physical_address(tmp_path, arch):
    """QEMU 10.0 cannot translate an instruction's address: with translation on, a fetch's paddr is unknown, for
    the code run through an alias too (and with it off, as in the `seq` guest, it equals vaddr:
    test_record_exact). test_record_newer_qemu checks the exact addresses QEMU >= 10.1 gives."""
    trace_path = tmp_path / "mmu.trace"
    proc = record(trace_path, arch, "mmu", "--start-on-marker", "--events", "fetch")
    assert proc.returncode == 0, proc.stderr
    trace = memtap.open(trace_path)
    assert trace.info["fetch_paddr"] == "untranslated"
    fetches = trace.records()
    assert len(fetches) >= 3 and not any(fetches["flags"] & RF_PADDR)
