"""Counting mode (`memtap record --counts`): the counters agree exactly with a full trace of the same guest."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from guestlib import ARCHES, guest, instruction_at, instructions, memtap, qemu_command, record, symbols

import memtap as mt
from memtap.analysis.execution import execution_counts
from memtap.trace import layout as L
from memtap.trace.counters import insn_counts, summary


def function_range(elf, name: str) -> tuple[int, int]:
    with open(elf, "rb") as f:
        for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if s.name == name:   # an assembly label without .size: take its first 16 bytes
                return s["st_value"], s["st_value"] + max(s["st_size"], 16)
    raise AssertionError(f"{name} not in {elf}")


def text_range(elf) -> tuple[int, int]:
    with open(elf, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".text")
        return sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]


def guest_counts(counts, lo: int, hi: int, skip: tuple[tuple[int, int], ...] = ()):
    keep = (counts.pc >= lo) & (counts.pc < hi)
    for a, b in skip:
        keep &= ~((counts.pc >= a) & (counts.pc < b))
    return {f: getattr(counts, f)[keep] for f in ("pc", "executed", "loads", "stores")}


@pytest.mark.parametrize("arch", ARCHES)
def test_counts_equal_full_trace(tmp_path, arch):
    """Every instruction of a guest without markers: executions, loads and stores equal those of a full trace."""
    program = "cover"
    full, counted = tmp_path / "full.trace", tmp_path / "counts.trace"
    for path, opts in ((full, ()), (counted, ("--counts",))):
        proc = record(path, arch, program, *opts)
        assert proc.returncode == 0, proc.stderr
    lo, hi = text_range(guest(arch, program))
    # mt_exit, and mt_park where an arch has it, wait for QEMU to act on the shutdown request: how long they
    # run differs from run to run.
    elf = guest(arch, program)
    spin = tuple(function_range(elf, name) for name in ("mt_exit", "mt_park") if name in symbols(elf))
    want = guest_counts(execution_counts(mt.open(full)), lo, hi, spin)
    trace = mt.open(counted)
    assert trace.counts_mode and trace.complete
    got = guest_counts(execution_counts(trace), lo, hi, spin)
    for field in ("pc", "loads", "stores"):
        assert np.array_equal(got[field], want[field]), field
    # Executions are exact except in blocks left early (on aarch64, QEMU restarts a block at its MMIO access to
    # the UART); there the count is the block's entries, and early_exits bounds the over-count.
    c = insn_counts(trace)
    early = np.zeros(len(got["pc"]), np.uint64)
    keep = np.isin(c.table["vaddr"], got["pc"])
    np.add.at(early, np.searchsorted(got["pc"], c.table["vaddr"][keep]), c.early_exits[keep])
    certain = early == 0
    assert np.array_equal(got["executed"][certain], want["executed"][certain])
    assert np.all(got["executed"] >= want["executed"])
    assert np.all(got["executed"] - early <= want["executed"])
    assert certain.sum() > 0.9 * len(certain)
    assert len(want["pc"]) > 100 and int(want["executed"].sum()) > 500


@pytest.mark.parametrize("arch", ARCHES)
def test_counts_fault_mid_block_are_bounded(tmp_path, arch):
    """A block left early by a fault: counts never exceed what ran, and the uncertainty covers the difference.

    Each instruction from fault_begin to fault_end and of the trap handler runs exactly once (see the fault guest).
    """
    elf = guest(arch, "fault")
    sym = symbols(elf)
    path = tmp_path / "counts.trace"
    proc = record(path, arch, "fault", "--counts")
    assert proc.returncode == 0, proc.stderr
    once = [pc for pc, _ in instructions(arch, elf, sym["fault_begin"], sym["fault_end"])
            + instructions(arch, elf, sym["handler_begin"], sym["handler_ret"])]
    c = insn_counts(mt.open(path))
    executed, early = [], []
    for pc in once:
        at = c.table["vaddr"] == pc
        executed.append(int(c.executed[at].sum()))
        early.append(int(c.early_exits[at].sum()))
    assert all(x >= 1 for x in executed), executed
    assert all(x - u <= 1 for x, u in zip(executed, early, strict=True)), (executed, early)
    fault = once.index(instruction_at(arch, elf, sym["fault_insn"])[0])
    assert executed[fault] >= 1
    handler = len(instructions(arch, elf, sym["fault_begin"], sym["fault_end"]))
    assert executed[handler:] == [1] * (len(once) - handler)   # the handler's block is exact


@pytest.mark.parametrize("arch", ARCHES)
def test_counts_per_vcpu(tmp_path, arch):
    """Four vCPUs: each vCPU's stores per instruction equal those of a full trace of the same guest.

    Stores only: the primary's wait loop makes a run-dependent number of loads and instructions."""
    full, counted = tmp_path / "full.trace", tmp_path / "counts.trace"
    for path, opts in ((full, ()), (counted, ("--counts",))):
        proc = record(path, arch, "smp", *opts, smp=4)
        assert proc.returncode == 0, proc.stderr
    # work() runs on every vCPU before the guest's STOP marker ends the full trace.
    lo, hi = function_range(guest(arch, "smp"), "work")
    exit_lo, exit_hi = 0, 0
    trace, recs = mt.open(counted), mt.open(full).records(kinds="store")
    for k in range(4):
        c = insn_counts(trace, vcpu=k)
        pcs = c.table["vaddr"]
        keep = (pcs >= lo) & (pcs < hi) & ~((pcs >= exit_lo) & (pcs < exit_hi)) & (c.stores > 0)
        got = {}
        for pc, n in zip(pcs[keep].tolist(), c.stores[keep].tolist(), strict=True):
            got[pc] = got.get(pc, 0) + n
        mine = recs[(recs["vcpu"] == k) & (recs["pc"] >= lo) & (recs["pc"] < hi)
                    & ~((recs["pc"] >= exit_lo) & (recs["pc"] < exit_hi))]
        want_pc, want_n = np.unique(mine["pc"], return_counts=True)
        assert got == dict(zip(want_pc.tolist(), want_n.tolist(), strict=True)), f"vCPU {k}"
        if k:   # the primary's call may be inlined into main; the secondaries enter work() through a pointer
            assert sum(got.values()) >= 257   # 256 pattern stores, the done flag (x86: and its frame)
    s = summary(trace)
    assert sorted(s["by_vcpu"]) == ["0", "1", "2", "3"]
    assert s["stores"] == sum(v["stores"] for v in s["by_vcpu"].values())


def test_counts_survive_sigkill(tmp_path):
    """A killed counting run keeps the counters of its last snapshot (one per second)."""
    arch = "riscv64"
    elf = guest(arch, "spin")
    path = tmp_path / "spin.trace"
    cmd = [sys.executable, "-m", "memtap.cli.main", "record", "--counts", "-o", str(path), "--",
           *qemu_command(arch, elf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    while not path.exists() or sum(c.type == L.CHUNK_COUNTS for c in mt.open(path).chunks) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)  # the plugin writes a snapshot a second; the guest spins until killed
    subprocess.run(["pkill", "-KILL", "-f", f"out={path}"], check=False)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    trace = mt.open(path)
    assert trace.truncated
    assert sum(1 for _ in trace.count_rows()) >= 2
    lo, hi = function_range(elf, "main")
    c = insn_counts(trace)
    inside = (c.table["vaddr"] >= lo) & (c.table["vaddr"] < hi)
    assert int(c.stores[inside].sum()) > 1_000_000
    stats = memtap("stats", str(path))
    assert stats.returncode == 0 and "truncated" in stats.stdout


def test_counts_refuse_record_options(tmp_path):
    proc = record(tmp_path / "x.trace", "riscv64", "seq", "--counts", "--events", "load")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "memtap: --counts counts every instruction of the whole run into a file; it cannot be combined with --events")
    assert not (tmp_path / "x.trace").exists()


def test_counts_trace_has_no_records(tmp_path):
    path = tmp_path / "c.trace"
    assert record(path, "riscv64", "seq", "--counts").returncode == 0
    proc = memtap("view", str(path))
    assert proc.returncode != 0
    assert "recorded with --counts" in proc.stderr and "Traceback" not in proc.stderr
    proc = memtap("stats", "--json", str(path))
    assert proc.returncode == 0
    assert '"mode": "counts"' in proc.stdout
