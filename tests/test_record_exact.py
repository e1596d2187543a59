"""Exact traces of the `seq` guest on every architecture: every record's kind, PC, address, size and order.

Between its START and STOP markers the guest stores 1, 2, 4 and 8 bytes to `mt_buf`, loads them back, executes
MEMTAP_MARK(0x1234) and a 10-iteration loop. The expected stream is derived from the ELF alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from guestlib import ALL_ARCHES, guest, instructions, raw_events, record, symbols

import memtap
from memtap.trace.layout import EV_DATA, EV_EXEC, KIND_NAMES, PRIV_MACHINE, PRIV_SUPERVISOR, RF_PADDR

# The level each guest's start code runs in: RISC-V machine mode (-bios none), AArch64 EL1, x86 CPL 0, Arm SVC mode,
# PowerPC MSR[PR] = 0.
EXPECTED_PRIV = {
    "riscv64": PRIV_MACHINE, "riscv32": PRIV_MACHINE, "aarch64": PRIV_SUPERVISOR, "x86_64": PRIV_SUPERVISOR,
    "i386": PRIV_SUPERVISOR, "arm": PRIV_SUPERVISOR, "arm-thumb": PRIV_SUPERVISOR, "ppc": PRIV_SUPERVISOR,
}


def expected_seq(arch: str, events=("fetch", "load", "store")) -> list[tuple]:
    elf = guest(arch, "seq")
    sym = symbols(elf)
    buf = sym["mt_buf"]
    data = {
        sym["seq_st1"]: ("store", buf + 0, 1),
        sym["seq_st2"]: ("store", buf + 2, 2),
        sym["seq_st4"]: ("store", buf + 4, 4),
        sym["seq_st8"]: ("store", buf + 8, 8),
        sym["seq_ld1"]: ("load", buf + 0, 1),
        sym["seq_ld2"]: ("load", buf + 2, 2),
        sym["seq_ld4"]: ("load", buf + 4, 4),
        sym["seq_ld8"]: ("load", buf + 8, 8),
    }
    out = []
    straight = instructions(arch, elf, sym["seq_begin"], sym["seq_loop"])
    loop = instructions(arch, elf, sym["seq_loop"], sym["seq_end"])
    for pc, size in straight + loop * 10:
        if "fetch" in events:
            out.append(("fetch", pc, pc, size, 0))
        if pc in data and data[pc][0] in events:
            kind, va, sz = data[pc]
            out.append((kind, pc, va, sz, 0))
        if pc == sym["seq_mark"]:
            out.append(("marker", pc, 0, 0, 0x1234))
    return out


def as_tuples(recs: np.ndarray) -> list[tuple]:
    return [(KIND_NAMES[r["kind"]], int(r["pc"]), int(r["vaddr"]), int(r["size"]), int(r["value"])) for r in recs]


@pytest.mark.parametrize("arch", ALL_ARCHES)
def test_seq_exact_records(tmp_path, arch):
    trace_path = tmp_path / "seq.trace"
    proc = record(trace_path, arch, "seq", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    trace = memtap.open(trace_path)
    assert not trace.truncated
    recs = trace.records()
    assert as_tuples(recs) == expected_seq(arch)
    # One global order with no gaps; icount advances by one per fetch and data records share their fetch's.
    assert recs["pos"].tolist() == list(range(len(recs)))
    fetch = recs["kind"] == 0
    assert np.all(np.diff(recs["icount"][fetch]) == 1)
    owner = np.maximum.accumulate(np.where(fetch, np.arange(len(recs)), 0))
    assert np.array_equal(recs["icount"], recs["icount"][owner])
    # Bare metal with the MMU off: physical = virtual for every data record.
    data = (recs["kind"] == 1) | (recs["kind"] == 2)
    assert np.all(recs["flags"][data] & RF_PADDR)
    assert np.array_equal(recs["paddr"][data], recs["vaddr"][data])
    assert set(recs["priv"].tolist()) == {EXPECTED_PRIV[arch]}
    assert set(recs["vcpu"].tolist()) == {0}
    assert trace.end["records"] == {"fetch": int(fetch.sum()), "load": 4, "store": 4, "marker": 1, "cmo": 0,
                                    "exception": 0}
    # Each access is its instruction's first, so its DATA event carries the fetches up to and including that
    # instruction's (trace.h); the rest of the fetches are EXEC runs.
    ev = raw_events(trace_path)
    assert np.all(ev["count"][ev["kind"] == EV_DATA] >= 2)
    assert int(ev["count"][(ev["kind"] == EV_DATA) | (ev["kind"] == EV_EXEC)].sum()) == int(fetch.sum()) + 8
    # Fetches: with the MMU off (riscv64, riscv32, aarch64, i386, arm here) physical = virtual; x86_64 runs with
    # paging on and e500 (ppc) always translates, and QEMU 10.0 cannot translate an instruction's address, so their
    # fetches have no physical address.
    if arch in ("x86_64", "ppc"):
        assert not np.any(recs["flags"][fetch] & RF_PADDR)
    else:
        assert np.all(recs["flags"][fetch] & RF_PADDR)
        assert np.array_equal(recs["paddr"][fetch], recs["vaddr"][fetch])


@pytest.mark.parametrize("events", [("load", "store"), ("fetch",), ("store",)])
def test_seq_event_selection(tmp_path, events):
    """A subset of events gives exactly that subset, with the same icount as in the full trace."""
    arch = "riscv64"
    proc = record(tmp_path / "full.trace", arch, "seq", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    full = memtap.open(tmp_path / "full.trace").records()
    proc = record(tmp_path / "part.trace", arch, "seq", "--start-on-marker", "--events", ",".join(events))
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(tmp_path / "part.trace").records()
    assert as_tuples(recs) == expected_seq(arch, events)
    wanted = np.isin(full["kind"], [KIND_NAMES.index(k) for k in (*events, "marker")])
    assert recs["icount"].tolist() == full["icount"][wanted].tolist()


def test_seq_virtual_addresses_only(tmp_path):
    trace_path = tmp_path / "seq.trace"
    proc = record(trace_path, "riscv64", "seq", "--start-on-marker", "--addr", "virtual")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(trace_path).records()
    assert as_tuples(recs) == expected_seq("riscv64")
    assert not np.any(recs["flags"] & RF_PADDR)


def test_max_insns_stops_after_exactly_n(tmp_path):
    trace_path = tmp_path / "seq.trace"
    proc = record(trace_path, "riscv64", "seq", "--start-on-marker", "--max-insns", "7")
    assert proc.returncode == 0, proc.stderr
    expected = expected_seq("riscv64")
    seventh_fetch = [i for i, r in enumerate(expected) if r[0] == "fetch"][6]
    # The 7th traced instruction is seq_ld4 (index 6): its own load is still traced, nothing after it.
    assert as_tuples(memtap.open(trace_path).records()) == expected[: seventh_fetch + 2]


def test_seq_physical_addresses_only(tmp_path):
    trace_path = tmp_path / "seq.trace"
    proc = record(trace_path, "riscv64", "seq", "--start-on-marker", "--addr", "physical", "--events", "load,store")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(trace_path).records()
    expected = expected_seq("riscv64", ("load", "store"))
    data = [r for r in expected if r[0] != "marker"]
    assert [(KIND_NAMES[k], int(p), int(s)) for k, p, s in zip(recs["kind"], recs["paddr"], recs["size"], strict=True)
            if k != 3] == [(k, va, sz) for k, _, va, sz, _ in data]
    assert not np.any(recs["vaddr"])


def test_cli_on_a_real_trace(tmp_path):
    """view, stats and export agree with the exact expected stream."""
    from guestlib import memtap as cli

    trace_path = tmp_path / "seq.trace"
    assert record(trace_path, "riscv64", "seq", "--start-on-marker").returncode == 0
    expected = expected_seq("riscv64")
    proc = cli("export", str(trace_path), "--format", "csv", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split(",")
    assert header[:8] == ["pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc"]
    rows = [dict(zip(header, ln.split(","), strict=True)) for ln in lines[1:]]
    got = [(r["kind"], int(r["pc"], 16), int(r["size"])) for r in rows]
    assert got == [(k, pc, sz) for k, pc, _, sz, _ in expected]
    st1 = next(r for r in rows if r["kind"] == "store")
    buf = symbols(guest("riscv64", "seq"))["mt_buf"]
    assert st1["vaddr"] == st1["paddr"] == f"{buf:#x}" and st1["size"] == "1"
    proc = cli("stats", str(trace_path), "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    stats = json.loads(proc.stdout)
    assert json.dumps(stats).count('"store": 4') >= 1
    parquet = tmp_path / "seq.parquet"
    assert cli("export", str(trace_path), "-o", str(parquet)).returncode == 0
    import duckdb

    got = duckdb.sql(f"select kind, count(*) from '{parquet}' group by kind order by kind").fetchall()
    assert got == sorted(
        (k, sum(1 for r in expected if r[0] == k)) for k in ("fetch", "load", "marker", "store")
    )
    proc = cli("view", str(trace_path), "--kinds", "marker")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1 and "0x1234" in proc.stdout


@pytest.mark.parametrize("arch", ["riscv64", "riscv32", "aarch64", "arm", "arm-thumb", "ppc"])
def test_privilege_follows_the_guest_into_user_mode(tmp_path, arch):
    """RISC-V: machine-mode code mrets into user mode, which ecalls back; AArch64: EL1 code erets into EL0, which
    comes back with svc; Arm: SVC-mode code returns into USR mode, which comes back with svc; PowerPC: supervisor
    code rfis into problem state, which comes back with sc. Each record carries its own level."""
    from memtap.trace.layout import KIND_FETCH, KIND_STORE, PRIV_USER

    elf = guest(arch, "priv")
    sym = {k: v & ~1 if arch == "arm-thumb" else v for k, v in symbols(elf).items()}
    kernel = PRIV_MACHINE if arch.startswith("riscv") else PRIV_SUPERVISOR
    trace_path = tmp_path / "priv.trace"
    proc = record(trace_path, arch, "priv", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(trace_path).records()
    fetched = recs[recs["kind"] == KIND_FETCH]
    user = [pc for pc, _ in instructions(arch, elf, sym["user_code"], sym["priv_handler"])]
    assert [int(pc) for pc in fetched["pc"] if pc in user] == user
    for r in recs:
        in_user = sym["user_code"] <= r["pc"] < sym["priv_handler"]
        assert r["priv"] == (PRIV_USER if in_user else kernel), hex(int(r["pc"]))
    stores = recs[recs["kind"] == KIND_STORE]
    word = sym["mt_user_word"]
    assert [(int(s["vaddr"]), int(s["priv"])) for s in stores] == [
        (word, kernel), (word + 4, PRIV_USER), (word + 8, kernel)]
