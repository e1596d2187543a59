"""The sharing analysis on synthetic accesses and synthetic traces: every figure equals a brute-force computation
of the documented rules (sharing_oracle), threads keep a migrating thread's false sharing false, and bad input
gives one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tracegen as tg
from guestlib import memtap
from sharing_oracle import Access, brute_force

from memtap.analysis.sharing import Transfers, movement_flags, run_passes
from memtap.analysis.sharing.groups import DistinctLines
from memtap.analysis.sharing.interleave import recording_mode, run_stats
from memtap.analysis.sharing.lines import classify, ranges, shared_addresses, shared_lines
from memtap.trace import layout as L


def columns(accesses: list[Access], tid: bool = False) -> dict[str, np.ndarray]:
    cols = {
        "vcpu": np.array([a.vcpu for a in accesses], np.uint16),
        "kind": np.array([L.KIND_STORE if a.store else L.KIND_LOAD for a in accesses], np.uint8),
        "vaddr": np.array([a.addr for a in accesses], np.uint64),
        "paddr": np.array([a.addr for a in accesses], np.uint64),
        "size": np.array([a.size for a in accesses], np.uint8),
        "flags": np.full(len(accesses), L.RF_PADDR, np.uint8),
        "pc": np.array([a.pc for a in accesses], np.uint64),
    }
    if tid:
        cols["tid"] = np.array([a.sharer for a in accesses], np.uint64)
    return cols


def source_of(accesses: list[Access], batch: int, tid: bool = False):
    """A Source over the accesses in batches of ``batch`` (so state crosses batch boundaries)."""
    cols = columns(accesses, tid)

    def source(names):
        for s in range(0, len(accesses), batch):
            yield {n: cols[n][s: s + batch] for n in names}

    return source


def random_accesses(seed: int, n: int, vcpus: int = 4, lines: int = 6, line_size: int = 64) -> list[Access]:
    """Accesses of sizes 1..16 at any alignment over a few lines (so some cross into the next line)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v = int(rng.integers(vcpus))
        size = int(rng.choice([1, 2, 4, 8, 16]))
        addr = 0x1000 + int(rng.integers(lines * line_size))
        out.append(Access(v, bool(rng.integers(2)), addr, size, v, pc=0x400 + 4 * int(rng.integers(3))))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("line_size", [16, 64, 128])
def test_core_equals_brute_force(seed, line_size):
    accesses = random_accesses(seed, 3000, lines=5, line_size=line_size)
    o = brute_force(accesses, line_size)
    p = run_passes(source_of(accesses, batch=257), line_size)
    assert p.counters["data"] == len(accesses)
    assert p.counters["transfers"] == sum(o.transfers.values())
    assert p.counters["transfer_records"] == o.transfer_records
    assert p.counters["movement_records"] == o.movement_records
    assert p.lines == len(o.vcpus)
    assert p.multi_vcpu_lines == sum(1 for s in o.vcpus.values() if len(s) > 1)
    got = {ln.address // line_size: ln for ln in shared_lines(p)}
    assert set(got) == {line for line, s in o.sharers.items() if len(s) > 1}
    for line, ln in got.items():
        assert ln.transfers == o.transfers[line]
        assert ln.readers == sorted(o.readers[line])
        assert ln.writers == sorted(o.writers[line])
        assert ln.kind == o.kind(line)
        assert {s: sum(((1 << (b - a)) - 1) << a for a, b in r) for s, r in ln.written.items()} == \
            {s: m for s, m in o.written[line].items() if m}
        rows = {}
        for off in ln.offsets:
            rows[(line, off.offset, off.sharer, False)] = off.reads
            rows[(line, off.offset, off.sharer, True)] = off.writes
        assert {k: v for k, v in rows.items() if v} == {k: v for k, v in o.counts.items() if k[0] == line}
    # runs of one vCPU per line touched by several vCPUs, all lines together
    runs = sorted(r for line, s in o.vcpus.items() if len(s) > 1 for r in o.runs(line))
    hist = p.runs_line
    assert sorted(np.repeat(hist[:, 0], hist[:, 1].astype(np.int64)).tolist()) == runs
    hist = p.runs_all
    assert sorted(np.repeat(hist[:, 0], hist[:, 1].astype(np.int64)).tolist()) == sorted(o.runs())


@pytest.mark.parametrize("seed", range(4))
def test_transfers_streamed_equal_brute_force(seed):
    """Pass 1 alone, as memtap report streams it beside its cache simulation: the vCPU x vCPU matrix (by the vCPU
    each transfer came from) and the transfers of every line more than one vCPU touched; fetches and MMIO
    accesses among the records move nothing."""
    accesses = random_accesses(seed, 3000, vcpus=5, lines=5)
    o = brute_force(accesses)
    cols = columns(accesses)
    rng = np.random.default_rng(seed)
    other = rng.random(len(accesses)) < 0.2   # every fifth record becomes a fetch or an MMIO load, kept out
    noise = {n: v.copy() for n, v in cols.items()}
    noise["kind"][other] = np.where(rng.random(int(other.sum())) < 0.5, L.KIND_FETCH, L.KIND_LOAD)
    noise["flags"][other] |= np.where(noise["kind"][other] == L.KIND_LOAD, L.RF_IO, 0).astype(np.uint8)
    mixed = {n: np.stack([cols[n], noise[n]], axis=1).reshape(-1) for n in cols}   # each access, then noise
    keep = np.repeat([[True, False]], len(accesses), axis=0).reshape(-1) | ~np.repeat(other, 2)
    mixed = {n: v[keep] for n, v in mixed.items()}
    t = Transfers(64)
    for start in range(0, len(mixed["kind"]), 311):
        t.feed({n: v[start: start + 311] for n, v in mixed.items()})
    m = t.matrix()
    assert {(int(a), int(b)): int(m[a, b]) for a, b in zip(*np.nonzero(m), strict=True)} == dict(o.matrix)
    assert t.lines().tolist() == [[line * 64, o.transfers[line]] for line in sorted(o.vcpus)
                                  if len(o.vcpus[line]) > 1]


def test_movement_flags_per_record():
    accesses = random_accesses(7, 2000)
    cols = columns(accesses)
    flags = np.concatenate(list(movement_flags(
        {n: v[s: s + 100] for n, v in cols.items()} for s in range(0, 2000, 100))))
    assert int(flags.sum()) == brute_force(accesses).movement_records
    # one by one: the record that first stores to a line is kept, the same vCPU's later accesses are not
    one = [Access(0, True, 0x40, 8, 0), Access(0, False, 0x40, 8, 0), Access(0, True, 0x48, 8, 0),
           Access(1, False, 0x40, 8, 1), Access(1, False, 0x44, 4, 1), Access(0, True, 0x40, 8, 0)]
    assert next(movement_flags([columns(one)])).tolist() == [True, False, False, True, False, True]


def test_transfer_rule_examples():
    """mtrace's rule by hand: a read after another core's write, a write after another core's access; reads of a
    line nobody wrote move nothing."""
    seq = [Access(0, False, 0x100, 8, 0),   # 0 reads: nothing written yet
           Access(1, False, 0x108, 8, 1),   # 1 reads: still nothing
           Access(0, True, 0x100, 8, 0),    # 0 writes while 1 holds it: transfer
           Access(0, True, 0x100, 8, 0),    # 0 writes again, alone: none
           Access(1, False, 0x108, 8, 1),   # 1 reads after 0's write: transfer
           Access(1, False, 0x108, 8, 1),   # again: none, 1 holds it
           Access(2, True, 0x110, 8, 2),    # 2 writes while 0 and 1 hold it: transfer
           Access(0, False, 0x100, 8, 0)]   # 0 reads after 2's write: transfer
    p = run_passes(source_of(seq, batch=3))
    (ln,) = shared_lines(p)
    assert (ln.address, ln.transfers, ln.kind) == (0x100, 4, "false")
    # where each came from: 1's copy (to 0), 0's write (to 1), 1 the last to read (to 2), 2's write (to 0)
    t = Transfers()
    t.feed(columns(seq))
    m = t.matrix()
    assert {(int(a), int(b)): int(m[a, b]) for a, b in zip(*np.nonzero(m), strict=True)} == \
        {(1, 0): 1, (0, 1): 1, (1, 2): 1, (2, 0): 1}
    assert t.lines().tolist() == [[0x100, 4]]
    assert ln.written == {0: [(0, 8)], 2: [(0x10, 0x18)]}
    assert p.counters["movement_records"] == 4 + 0  # the first store was a transfer already


def test_threads_keep_false_sharing_false_when_a_thread_migrates():
    """Thread 100 writes bytes 0-7 on vCPU 0, then on vCPU 1; thread 200 writes bytes 8-15 on vCPU 2. By vCPU
    two writers overlap (true sharing); by thread the writers' bytes are disjoint (false sharing)."""
    seq = []
    for i in range(20):
        seq.append(Access(0 if i < 10 else 1, True, 0x2000, 8, 100))
        seq.append(Access(2, True, 0x2008, 8, 200))
    by_vcpu = shared_lines(run_passes(source_of(seq, batch=7)))
    by_thread = shared_lines(run_passes(source_of(seq, batch=7, tid=True), threads=True))
    assert [(ln.kind, ln.writers, ln.threads) for ln in by_vcpu] == [("true", [0, 1, 2], [])]
    assert [(ln.kind, ln.writers, ln.threads) for ln in by_thread] == [("false", [0, 1, 2], [100, 200])]
    assert by_vcpu[0].transfers == by_thread[0].transfers == brute_force(seq).transfers[0x2000 // 64]
    assert by_thread[0].written == {100: [(0, 8)], 200: [(8, 16)]}


def test_one_thread_on_two_vcpus_is_not_shared():
    seq = [Access(k % 2, True, 0x3000, 8, 7) for k in range(6)]
    p = run_passes(source_of(seq, batch=4, tid=True), threads=True)
    assert shared_lines(p) == []
    assert (p.multi_vcpu_lines, p.multi_sharer_lines, p.counters["transfers"]) == (1, 0, 5)


def test_two_threads_on_one_vcpu_share_without_transfers():
    seq = [Access(0, True, 0x3000 + 8 * (k % 2), 8, 10 + k % 2) for k in range(6)]
    (ln,) = shared_lines(run_passes(source_of(seq, batch=4, tid=True), threads=True))
    assert (ln.kind, ln.threads, ln.transfers, ln.writers) == ("false", [10, 11], 0, [0])


def test_shared_addresses_and_helpers():
    seq = [Access(0, True, 0x4000, 4, 0), Access(1, False, 0x4000, 4, 1), Access(1, True, 0x4004, 4, 1)]
    lines = shared_lines(run_passes(source_of(seq, batch=10)))
    (a,) = shared_addresses(lines)
    assert (a.address, a.accesses) == (0x4000, {0: 1, 1: 1})
    assert ranges(0b1110011) == [(0, 2), (4, 7)]
    assert classify({0: 0b11, 1: 0b1100}) == "false"
    assert classify({0: 0b11, 1: 0b10}) == "true"
    assert classify({0: 0b11, 1: 0}) == "read"


def test_distinct_lines_per_group():
    """The per-process (and later per-system-call) table: distinct lines, and lines moved, per group."""
    d = DistinctLines(64)
    d.add(np.array([5, 5, 5, 9]), np.array([0x1000, 0x1008, 0x103c, 0x1000], np.uint64),
          np.array([8, 8, 8, 4]), np.array([False, True, False, True]))
    d.add(np.array([9]), np.array([0x2000], np.uint64), np.array([1]), np.array([False]))
    assert d.table() == [{"group": 5, "lines": 2, "moved_lines": 1}, {"group": 9, "lines": 2, "moved_lines": 1}]


@pytest.mark.parametrize("cmd, tcg, option", [
    (["qemu-system-riscv64", "-smp", "4"], "multi-threaded", None),
    (["qemu-system-riscv64", "-accel", "tcg,thread=single", "-smp", "4"], "round-robin", "-accel tcg,thread=single"),
    (["qemu-system-riscv64", "--accel", "tcg,thread=multi"], "multi-threaded", "-accel tcg,thread=multi"),
    (["qemu-system-riscv64", "-icount", "shift=4"], "round-robin", "-icount shift=4"),
])
def test_recording_mode(cmd, tcg, option):
    mode = recording_mode({"qemu_command": cmd}, {"smp_vcpus": 4})
    assert (mode.tcg, mode.option, mode.vcpus) == (tcg, option, 4)
    assert recording_mode({"qemu_command": cmd}, {"smp_vcpus": 1}).tcg == "single vCPU"


def test_run_stats():
    r = run_stats(np.array([[1, 5], [3, 1], [1000, 1]], np.uint64))
    assert (r.runs, r.median, r.weighted, r.longest) == (7, 1, 1000, 1000)


def two_vcpu_trace(path, addresses: str = "both"):
    """vCPU 0 stores 8 bytes to 0x8000 (mtrace logs a line's first store), vCPU 1 then stores to 0x8008 (a
    transfer) and loads 0x8000 (its own copy: none), vCPU 0 loads 0x8008 (a transfer): one false-shared line."""
    w = tg.TraceWriter(path)
    w.info(smp_vcpus=2, addresses=addresses)
    w.insns([tg.Insn(0x1000), tg.Insn(0x2000), tg.Insn(0x2004)])
    w.events(0, [tg.data_ev(0, 0x8000, pos=0, icount=1, store=True, paddr=0x8000),
                 tg.data_ev(0, 0x8008, pos=3, icount=2, paddr=0x8008)])
    w.events(1, [tg.data_ev(1, 0x8008, pos=1, icount=1, store=True, paddr=0x8008),
                 tg.data_ev(2, 0x8000, pos=2, icount=2, paddr=0x8000)])
    w.end(records={"fetch": 0, "load": 2, "store": 2, "marker": 0, "cmo": 0, "exception": 0})
    w.close()


def test_cli_json_on_synthetic_trace(tmp_path):
    two_vcpu_trace(tmp_path / "t.trace")
    r = memtap("sharing", str(tmp_path / "t.trace"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["line_size"] == 64 and doc["address"] == "physical" and doc["sharers"] == "vcpu"
    assert doc["lines"] == [{"address": 0x8000, "kind": "false", "readers": [0, 1], "writers": [0, 1],
                             "threads": [], "transfers": 2, "symbols": []}]
    assert doc["movement"] == {"trace_records": 4, "data_accesses": 4, "movement_records": 3,
                               "transfer_records": 2, "kept_of_data": 0.75, "kept_of_trace": 0.75}
    assert "per_process" not in doc
    r = memtap("sharing", str(tmp_path / "t.trace"), "--movement")
    assert r.returncode == 0 and "movement mode keeps     3 records" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--line-size", "48"], "memtap: --line-size 48: a power of two from 8 to 4096 bytes"),
    (["--sharers", "thread"], "memtap: the trace has no thread column: sharers can only be vCPUs"),
    (["--top", "-1"], "memtap: --top: N must be >= 0"),
])
def test_cli_errors(tmp_path, args, message):
    two_vcpu_trace(tmp_path / "t.trace")
    r = memtap("sharing", str(tmp_path / "t.trace"), *args)
    assert (r.returncode, r.stderr.strip(), r.stdout) == (1, message, "")


def test_cli_physical_on_a_virtual_trace(tmp_path):
    two_vcpu_trace(tmp_path / "t.trace", addresses="virtual")
    r = memtap("sharing", str(tmp_path / "t.trace"), "--address", "physical")
    assert r.returncode == 1
    assert r.stderr.strip().endswith("was recorded with --addr virtual: it has no physical addresses")
    r = memtap("sharing", str(tmp_path / "t.trace"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["address"] == "virtual"


def test_cli_missing_trace_and_elf(tmp_path):
    r = memtap("sharing", str(tmp_path / "none.trace"))
    assert r.returncode == 1 and r.stderr.startswith("memtap: ") and len(r.stderr.splitlines()) == 1
    two_vcpu_trace(tmp_path / "t.trace")
    r = memtap("sharing", str(tmp_path / "t.trace"), "--elf", str(tmp_path / "none.elf"))
    assert (r.returncode, r.stderr.strip()) == (1, f"memtap: {tmp_path / 'none.elf'}: no such ELF file")


def test_cli_counts_mode_and_truncated_traces(tmp_path):
    w = tg.TraceWriter(tmp_path / "c.trace")
    w.info(mode="counts")
    w.end()
    w.close()
    r = memtap("sharing", str(tmp_path / "c.trace"))
    assert (r.returncode, r.stderr.strip()) == (
        1, f"memtap: {tmp_path / 'c.trace'} was recorded with --counts: it holds counters, not accesses")
    # a truncated trace is analysed up to its last whole chunk, with one warning; movement has no trace total
    w = tg.TraceWriter(tmp_path / "t.trace")
    w.info(smp_vcpus=2)
    w.insns([tg.Insn(0x1000), tg.Insn(0x2000)])
    w.events(0, [tg.data_ev(0, 0x8000, pos=0, icount=1, store=True, paddr=0x8000)])
    w.events(1, [tg.data_ev(1, 0x8000, pos=1, icount=1, paddr=0x8000)])
    w.events(0, [tg.data_ev(0, 0x8000, pos=2, icount=2, paddr=0x8000)], cut=20)
    w.close()
    r = memtap("sharing", str(tmp_path / "t.trace"), "--json")
    assert r.returncode == 0
    assert r.stderr.strip() == (f"memtap: warning: {tmp_path / 't.trace'} is truncated (no END chunk); "
                                "analysing records up to the last whole chunk")
    doc = json.loads(r.stdout)
    assert [(ln["kind"], ln["readers"], ln["writers"], ln["transfers"]) for ln in doc["lines"]] == \
        [("read", [1], [0], 1)]
    assert doc["movement"]["trace_records"] is None and doc["movement"]["kept_of_trace"] is None


def test_lines_keyed_physically_are_named_by_their_virtual_address(tmp_path):
    """Two virtual addresses of one physical line (a page mapped twice): one line, aliased, named by the virtual
    address seen first; keyed virtually they are two lines, each touched by one vCPU, so nothing is shared."""
    w = tg.TraceWriter(tmp_path / "a.trace")
    w.info(smp_vcpus=2)
    w.insns([tg.Insn(0x1000), tg.Insn(0x2000)])
    w.events(0, [tg.data_ev(0, 0x4000_0010, pos=0, icount=1, store=True, paddr=0x9000_0010)])
    w.events(1, [tg.data_ev(1, 0x7000_0018, pos=1, icount=1, store=True, paddr=0x9000_0018)])
    w.end()
    w.close()
    doc = json.loads(memtap("sharing", str(tmp_path / "a.trace"), "--json").stdout)
    assert [(ln["address"], ln["kind"], ln["transfers"]) for ln in doc["lines"]] == [(0x9000_0000, "false", 1)]
    d = doc["details"][0]
    assert (d["vaddr"], d["aliased"]) == (0x4000_0000, True)
    assert [(a["address"], a["vaddr"]) for a in doc["shared_addresses"]] == []
    doc = json.loads(memtap("sharing", str(tmp_path / "a.trace"), "--json", "--address", "virtual").stdout)
    assert doc["lines"] == [] and doc["summary"]["lines"] == 2


def test_vcpu_beyond_the_model_is_a_clear_error():
    from memtap.errors import UserError

    seq = [Access(0, True, 0x100, 8, 0), Access(64, False, 0x100, 8, 64)]
    with pytest.raises(UserError, match=r"^vCPU 64: the sharing analysis models vCPUs 0\.\.63$"):
        run_passes(source_of(seq, batch=2))


def test_text_report_by_thread():
    """The text form names threads (tid) as the sharers and lists them per line."""
    from types import SimpleNamespace

    from memtap.analysis.sharing import build_report, format_text
    from memtap.analysis.sharing.report import Namer

    seq = [Access(0, True, 0x2000, 8, 100), Access(1, True, 0x2008, 8, 200), Access(1, True, 0x2000, 8, 100)]
    p = run_passes(source_of(seq, batch=2, tid=True), threads=True)
    trace = SimpleNamespace(path="t.trace", arch="riscv64", meta={"qemu_command": ["qemu-system-riscv64"]},
                            info={"smp_vcpus": 2}, end=None)
    report = build_report(p, trace, Namer())
    assert report["sharers"] == "thread" and report["lines"][0]["threads"] == [100, 200]
    text = format_text(report)
    assert "sharers: threads" in text
    header = next(line for line in text.splitlines() if line.split()[:3] == ["#", "address", "kind"])
    assert header.split() == ["#", "address", "kind", "transfers", "readers", "writers", "threads", "symbols"]
    assert "written: tid 100 [0x0,0x8); tid 200 [0x8,0x10)" in text
