"""Reader tests on synthetic traces: expansion rules, filters, orderings, truncation and corruption."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tracegen import Insn, TraceWriter, data_ev, exec_ev, mark_ev, simple_trace

from memtap.errors import TraceError, UserError
from memtap.trace import layout as L
from memtap.trace.reader import open_trace

FIELDS = ("pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc", "priv", "flags", "value")

# (pos, icount, vcpu, kind, vaddr, paddr, size, pc, priv, flags, value) for tracegen.simple_trace
SIMPLE = [
    (0, 1, 0, L.KIND_FETCH, 0x1000, 0, 4, 0x1000, L.PRIV_MACHINE, 0, 0),
    (1, 2, 0, L.KIND_FETCH, 0x1004, 0, 2, 0x1004, L.PRIV_MACHINE, 0, 0),
    (2, 3, 0, L.KIND_FETCH, 0x1006, 0, 4, 0x1006, L.PRIV_MACHINE, 0, 0),
    (3, 2, 0, L.KIND_LOAD, 0x8000, 0x80008000, 8, 0x1004, L.PRIV_MACHINE, L.RF_PADDR, 0),
    (4, 10, 1, L.KIND_FETCH, 0x2000, 0, 4, 0x2000, L.PRIV_USER, 0, 0),
    (5, 11, 1, L.KIND_FETCH, 0x2004, 0, 4, 0x2004, L.PRIV_USER, 0, 0),
    (6, 11, 1, L.KIND_STORE, 0x9004, 0, 4, 0x2004, L.PRIV_USER, L.RF_IO, 0),
    (7, 12, 1, L.KIND_FETCH, 0x2008, 0, 4, 0x2008, L.PRIV_USER, 0, 0),
    (8, 12, 1, L.KIND_MARKER, 0, 0, 0, 0x2008, L.PRIV_USER, 0, 42),
]


def rows(rec: np.ndarray) -> list[tuple]:
    return [tuple(int(r[f]) for f in FIELDS) for r in rec]


@pytest.fixture(params=[L.CODEC_RAW, L.CODEC_ZSTD], ids=["raw", "zstd"])
def simple(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "simple.memtap"
    simple_trace(path, codec=request.param)
    return path


def test_metadata(simple: Path) -> None:
    t = open_trace(simple)
    assert t.meta["qemu_command"] == ["qemu-riscv64"]
    assert t.info["target"] == "riscv64" and t.arch == "riscv64"
    assert t.info["smp_vcpus"] == 2
    assert t.end == {"complete": True, "events": 6}
    assert t.complete and not t.truncated
    assert t.vcpus == (0, 1)
    assert t.version == L.FORMAT_VERSION == 2
    assert [c.type_name for c in t.chunks] == ["INFO", "INSNS", "EVENTS", "INSNS", "EVENTS", "END"]


def test_records_expanded(simple: Path) -> None:
    t = open_trace(simple)
    rec = t.records()
    assert rec.dtype == L.RECORD
    assert rows(rec) == SIMPLE
    assert rows(t.sorted()) == SIMPLE
    # batch size must not change the result
    assert rows(np.concatenate(list(t.batches(batch_size=1)))) == SIMPLE
    assert all(len(b) <= 2 for b in t.batches(batch_size=2))


def test_filters(simple: Path) -> None:
    t = open_trace(simple)
    assert rows(t.records(kinds=["load", "store"])) == [SIMPLE[3], SIMPLE[6]]
    assert rows(t.records(kinds="marker")) == [SIMPLE[8]]
    assert rows(t.records(kinds=[L.KIND_FETCH], vcpus=[1])) == [SIMPLE[4], SIMPLE[5], SIMPLE[7]]
    assert rows(t.records(vcpus=0)) == SIMPLE[:4]
    assert rows(t.records(pos_range=(1, 5))) == SIMPLE[1:5]
    assert rows(t.records(pos_range=(7, None))) == SIMPLE[7:]
    assert rows(t.records(pos_range=(None, 1))) == SIMPLE[:1]
    # half-open vaddr range; markers have no address
    assert rows(t.records(addr_range=(0x1004, 0x2004))) == [SIMPLE[1], SIMPLE[2], SIMPLE[4]]
    assert rows(t.records(addr_range=(0x8000, 0x9005), order="pos")) == [SIMPLE[3], SIMPLE[6]]
    assert len(t.records(vcpus=[7])) == 0
    with pytest.raises(UserError, match="unknown record kind 'loads'"):
        t.records(kinds="loads")


def test_long_exec_runs_split_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "long.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x4000 + 4 * i, 4, L.PRIV_SUPERVISOR) for i in range(3000)])
        w.events(0, [exec_ev(0, 1000, pos=100, icount=1), data_ev(999, 0x10, pos=1100, icount=1000, size=1),
                     exec_ev(1000, 2000, pos=1101, icount=1001)])
        w.end()
    t = open_trace(path)
    for bs in (7, 1000, 1 << 16):
        rec = t.records(batch_size=bs)
        assert len(rec) == 3001
        assert (rec["pos"] == np.arange(100, 3101)).all()
        fetch = rec[rec["kind"] == L.KIND_FETCH]
        assert (fetch["vaddr"] == 0x4000 + 4 * np.arange(3000)).all()
        assert (fetch["icount"] == np.arange(1, 3001)).all()
        assert (rec["priv"] == L.PRIV_SUPERVISOR).all()
        assert rows(rec[rec["kind"] == L.KIND_LOAD]) == [
            (1100, 1000, 0, L.KIND_LOAD, 0x10, 0, 1, 0x4000 + 4 * 999, L.PRIV_SUPERVISOR, 0, 0)]
    assert rows(t.records(pos_range=(1099, 1102))) == [
        (1099, 1000, 0, L.KIND_FETCH, 0x4000 + 4 * 999, 0, 4, 0x4000 + 4 * 999, L.PRIV_SUPERVISOR, 0, 0),
        (1100, 1000, 0, L.KIND_LOAD, 0x10, 0, 1, 0x4000 + 4 * 999, L.PRIV_SUPERVISOR, 0, 0),
        (1101, 1001, 0, L.KIND_FETCH, 0x4000 + 4 * 1000, 0, 4, 0x4000 + 4 * 1000, L.PRIV_SUPERVISOR, 0, 0),
    ]


def test_data_flags(tmp_path: Path) -> None:
    path = tmp_path / "flags.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x100)])
        w.events(0, [
            data_ev(0, 0x10, pos=0, icount=1, size=2, signed=True),
            data_ev(0, 0x20, pos=1, icount=1, size=16, store=True, big_endian=True, paddr=0x1020),
            data_ev(0, 0x30, pos=2, icount=1, size=1, io=True, paddr=0),
        ])
    rec = open_trace(path).records()
    assert rec["size"].tolist() == [2, 16, 1]
    assert rec["kind"].tolist() == [L.KIND_LOAD, L.KIND_STORE, L.KIND_LOAD]
    assert rec["flags"].tolist() == [L.RF_SIGNED, L.RF_BIG_ENDIAN | L.RF_PADDR, L.RF_IO | L.RF_PADDR]
    assert rec["paddr"].tolist() == [0, 0x1020, 0]


def _interleaved(path: Path, seed: int = 1, n_vcpus: int = 3, steps: int = 4000) -> None:
    """Random multi-vCPU trace with many small chunks, global pos interleaved across vCPUs."""
    rng = np.random.default_rng(seed)
    with TraceWriter(path, codec=L.CODEC_ZSTD) as w:
        w.info(smp_vcpus=n_vcpus)
        w.insns([Insn(0x1000 + 4 * i) for i in range(64)])
        pending: dict[int, list] = {v: [] for v in range(n_vcpus)}
        icount = dict.fromkeys(range(n_vcpus), 0)
        pos = 0
        for step in range(steps):
            v = int(rng.integers(n_vcpus))
            if rng.random() < 0.5:
                n = int(rng.integers(1, 5))
                pending[v].append(exec_ev(int(rng.integers(0, 60)), n, pos=pos, icount=icount[v] + 1))
                pos += n
                icount[v] += n
            else:
                pending[v].append(data_ev(3, 0x8000 + 8 * step, pos=pos, icount=icount[v], store=step % 3 == 0))
                pos += 1
            if len(pending[v]) >= int(rng.integers(5, 50)):
                w.events(v, pending[v])
                pending[v] = []
        for v, evs in pending.items():
            if evs:
                w.events(v, evs)
        w.end()


def test_pos_order_merge(tmp_path: Path) -> None:
    path = tmp_path / "mt.memtap"
    _interleaved(path)
    t = open_trace(path)
    file_order = t.records()
    expect = file_order[np.argsort(file_order["pos"], kind="stable")]
    assert (np.diff(expect["pos"].astype(np.int64)) == 1).all()  # pos is one dense global order
    for bs in (1, 13, 1 << 16):
        batches = list(t.batches(order="pos", batch_size=bs))
        assert all(0 < len(b) <= bs for b in batches)
        got = np.concatenate(batches)
        assert got.tobytes() == expect.tobytes()
    sub = t.sorted(vcpus=[0, 2], kinds=["store"])
    m = np.isin(expect["vcpu"], [0, 2]) & (expect["kind"] == L.KIND_STORE)
    assert sub.tobytes() == expect[m].tobytes()


def test_truncated_mid_payload(tmp_path: Path) -> None:
    path = tmp_path / "cut.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000), Insn(0x1004)])
        w.events(0, [exec_ev(0, 2, pos=0, icount=1)])
        w.events(0, [exec_ev(0, 2, pos=2, icount=3)], cut=54)  # header + 6 of its 12 payload bytes
    t = open_trace(path)
    assert t.truncated and not t.complete and t.end is None
    assert t.records()["pos"].tolist() == [0, 1]
    assert t.scan().truncated


@pytest.mark.parametrize("cut", [0, 1, 47])
def test_truncated_mid_header(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)])
        w.events(0, [exec_ev(0, 1, pos=0, icount=1)])
        w.end(cut=cut)
    t = open_trace(path)
    assert t.truncated
    assert len(t.records()) == 1


def test_no_chunks_at_all(tmp_path: Path) -> None:
    path = tmp_path / "empty.memtap"
    TraceWriter(path).close()
    t = open_trace(path)
    assert t.truncated and t.info == {} and t.arch is None
    assert len(t.records()) == 0 and len(t.sorted()) == 0


def test_bad_crc_names_offset(tmp_path: Path) -> None:
    path = tmp_path / "crc.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)])
        off = w.events(0, [exec_ev(0, 1, pos=0, icount=1)], bad_crc=True)
        w.end()
    t = open_trace(path)  # opening reads headers only
    for call in (t.records, t.scan):
        with pytest.raises(TraceError) as ei:
            call()
        msg = str(ei.value)
        assert "\n" not in msg
        assert re.search(rf"chunk 2 at byte offset {off}: crc32 mismatch", msg), msg
        assert str(path) in msg


def test_bad_crc_in_info_fails_open(tmp_path: Path) -> None:
    path = tmp_path / "crc.memtap"
    with TraceWriter(path) as w:
        off = w.chunk(L.CHUNK_INFO, b'{"target": "x86_64"}', bad_crc=True)
    with pytest.raises(TraceError, match=f"byte offset {off}: crc32 mismatch"):
        open_trace(path)


def test_bad_chunk_magic(tmp_path: Path) -> None:
    path = tmp_path / "magic.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)], bad_magic=True)
        off = w.offsets[-1]
        w.end()
    with pytest.raises(TraceError, match=f"chunk 1 at byte offset {off}: bad chunk magic 0xdeadbeef"):
        open_trace(path)


def test_undecodable_zstd(tmp_path: Path) -> None:
    path = tmp_path / "zstd.memtap"
    with TraceWriter(path, codec=L.CODEC_ZSTD) as w:
        w.info()
        w.insns([Insn(0x1000)])
        off = w.events(0, [exec_ev(0, 1, pos=0, icount=1)], bad_zstd=True)
        w.end()
    t = open_trace(path)
    t.scan()  # the checksum is fine: the stored bytes are what the writer wrote
    with pytest.raises(TraceError, match=f"byte offset {off}: cannot decompress zstd payload"):
        t.records()


def test_not_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello world, this is not a trace")
    with pytest.raises(TraceError) as ei:
        open_trace(path)
    assert str(ei.value) == f"{path}: not a memtap trace (bad magic)"
    (tmp_path / "tiny").write_bytes(b"MEM")
    with pytest.raises(TraceError, match="not a memtap trace"):
        open_trace(tmp_path / "tiny")
    with pytest.raises(UserError, match="no such file"):
        open_trace(tmp_path / "missing")


@pytest.mark.parametrize("version", [0, 3])
def test_wrong_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "v.memtap"
    TraceWriter(path, version=version).close()
    with pytest.raises(TraceError, match=f"unsupported trace format version {version} .this memtap reads versions "
                                         "1 to 2"):
        open_trace(path)


def test_version_1_reads(tmp_path: Path) -> None:
    """Version 1 differs only in never carrying fetches in DATA events: its files read as before."""
    path = tmp_path / "v1.memtap"
    simple_trace(path)
    raw = bytearray(path.read_bytes())
    raw[8:12] = (1).to_bytes(4, "little")
    path.write_bytes(raw)
    t = open_trace(path)
    assert t.version == 1 and rows(t.records()) == SIMPLE


def fused_trace(path: Path) -> None:
    """A block of four instructions: fetches 0-1 and the load of 1 in one DATA event, fetch 2 and the store of 2
    in another, then a second store of 2 alone, then fetch 3 as an EXEC run."""
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000 + 4 * i, 4, L.PRIV_MACHINE) for i in range(4)])
        w.events(0, [data_ev(1, 0x8000, pos=12, icount=6, fetches=2, size=4, paddr=0x8000),
                     data_ev(2, 0x9000, pos=14, icount=7, fetches=1, store=True),
                     data_ev(2, 0x9008, pos=15, icount=7, store=True, size=2),
                     exec_ev(3, 1, pos=16, icount=8)])
        w.end()


FUSED = [
    (10, 5, 0, L.KIND_FETCH, 0x1000, 0, 4, 0x1000, L.PRIV_MACHINE, 0, 0),
    (11, 6, 0, L.KIND_FETCH, 0x1004, 0, 4, 0x1004, L.PRIV_MACHINE, 0, 0),
    (12, 6, 0, L.KIND_LOAD, 0x8000, 0x8000, 4, 0x1004, L.PRIV_MACHINE, L.RF_PADDR, 0),
    (13, 7, 0, L.KIND_FETCH, 0x1008, 0, 4, 0x1008, L.PRIV_MACHINE, 0, 0),
    (14, 7, 0, L.KIND_STORE, 0x9000, 0, 8, 0x1008, L.PRIV_MACHINE, 0, 0),
    (15, 7, 0, L.KIND_STORE, 0x9008, 0, 2, 0x1008, L.PRIV_MACHINE, 0, 0),
    (16, 8, 0, L.KIND_FETCH, 0x100C, 0, 4, 0x100C, L.PRIV_MACHINE, 0, 0),
]


def test_data_events_carry_fetches(tmp_path: Path) -> None:
    """A DATA event with count c holds c - 1 fetches ending with its instruction's, then the access (trace.h)."""
    path = tmp_path / "fused.memtap"
    fused_trace(path)
    t = open_trace(path)
    for bs in (1, 2, 1 << 16):
        assert rows(t.records(batch_size=bs)) == FUSED
    assert rows(t.records(kinds="fetch")) == [FUSED[i] for i in (0, 1, 3, 6)]
    assert rows(t.records(kinds="store")) == FUSED[4:6]
    assert rows(t.records(pos_range=(11, 13))) == FUSED[1:3]
    assert rows(t.records(pos_range=(13, 14))) == FUSED[3:4]
    assert rows(t.records(pos_range=(None, 11))) == FUSED[:1]
    assert rows(t.records(addr_range=(0x1004, 0x1009))) == [FUSED[1], FUSED[3]]
    assert rows(t.records(addr_range=(0x9000, 0x9001))) == [FUSED[4]]


@pytest.mark.parametrize("event, what", [
    (data_ev(0, 0x8000, pos=5, icount=5, fetches=2), "event references undefined instruction id -1"),
    (exec_ev(0, 0, pos=5, icount=5), "event 0 has a bad record count 0"),
    (mark_ev(0, 7, pos=5, icount=5)[:7] + (2, 0, 0), "event 0 has a bad record count 2"),
])
def test_bad_record_counts(tmp_path: Path, event: tuple, what: str) -> None:
    path = tmp_path / "badcount.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)])
        off = w.events(0, [event])
    with pytest.raises(TraceError, match=f"byte offset {off}: {what}"):
        open_trace(path).records()


def test_bytes_after_end(tmp_path: Path) -> None:
    path = tmp_path / "tail.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.end()
        w.raw(b"\0" * 10)
    tail = path.stat().st_size - 10
    with pytest.raises(TraceError, match=f"byte offset {tail}: 10 unexpected bytes after the END chunk"):
        open_trace(path)


def test_undefined_insn(tmp_path: Path) -> None:
    path = tmp_path / "undef.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000), Insn(0x1004)])
        off = w.events(0, [exec_ev(1, 3, pos=0, icount=1)])
    with pytest.raises(TraceError, match=f"byte offset {off}: event references undefined instruction id 2"):
        open_trace(path).records()


def test_translated_fetch_paddrs(tmp_path: Path) -> None:
    """INSN_PHYS: paddr = vaddr; INSN_PADDR: paddr from the INSN_PADDRS chunk; neither: unknown."""
    path = tmp_path / "paddrs.memtap"
    with TraceWriter(path) as w:
        w.info(fetch_paddr="translated")
        w.insns([Insn(0x1000, flags=L.INSN_PHYS), Insn(0xC0001000, flags=L.INSN_PADDR), Insn(0xC0001004)])
        w.insn_paddrs([(1, 0x80042000)])
        w.events(0, [exec_ev(0, 3, pos=0, icount=1)])
        w.end()
    rec = open_trace(path).records()
    assert [(int(r["pc"]), int(r["paddr"]), int(r["flags"])) for r in rec] == [
        (0x1000, 0x1000, L.RF_PADDR), (0xC0001000, 0x80042000, L.RF_PADDR), (0xC0001004, 0, 0)]


def test_insn_paddrs_bad_length(tmp_path: Path) -> None:
    path = tmp_path / "badpaddrs.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000, flags=L.INSN_PADDR)])
        off = w.chunk(L.CHUNK_INSN_PADDRS, b"\0" * 12, count=1)
    with pytest.raises(TraceError, match=f"byte offset {off}: raw_len 12 does not match 1 instruction addresses"):
        open_trace(path)


def test_insn_table_grows(tmp_path: Path) -> None:
    path = tmp_path / "grow.memtap"
    with TraceWriter(path) as w:
        w.info()
        pos = 0
        for k in range(5):
            first = w.insns([Insn(0x10000 * k + 2 * i, 2, L.PRIV_HYPERVISOR) for i in range(700)])
            w.events(k % 2, [exec_ev(first, 700, pos=pos, icount=pos + 1),
                             mark_ev(first + 699, k, pos=pos + 700, icount=pos + 700)])
            pos += 701
        w.end()
    t = open_trace(path)
    rec = t.sorted()
    assert len(rec) == 5 * 701
    assert (rec["pos"] == np.arange(5 * 701)).all()
    marks = rec[rec["kind"] == L.KIND_MARKER]
    assert marks["value"].tolist() == [0, 1, 2, 3, 4]
    assert marks["pc"].tolist() == [0x10000 * k + 2 * 699 for k in range(5)]
    table = t.insn_table()
    assert len(table) == 3500 and table["vaddr"][701] == 0x10002


def test_scan(simple: Path) -> None:
    s = open_trace(simple).scan()
    assert s.chunks == 6
    assert s.chunks_by_type == {"INFO": 1, "INSNS": 2, "EVENTS": 2, "END": 1}
    assert s.insns == 6 and s.events == 6
    assert s.events_by_vcpu == {0: 2, 1: 4}
    assert not s.truncated and s.end == {"complete": True, "events": 6}
    assert s.file_bytes == simple.stat().st_size


def test_arrow_and_pandas(simple: Path) -> None:
    t = open_trace(simple)
    tab = t.to_arrow()
    assert tab.column_names == ["pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc", "priv", "io",
                                "value", "value_hi", "atomic", "exclusive"]
    d = tab.to_pydict()
    assert d["kind"] == ["fetch", "fetch", "fetch", "load", "fetch", "fetch", "store", "fetch", "marker"]
    assert d["paddr"] == [None, None, None, 0x80008000, None, None, None, None, None]
    assert d["vaddr"][-1] is None and d["vaddr"][3] == 0x8000
    assert d["value"] == [None] * 8 + [42]
    assert d["io"] == [False] * 6 + [True, False, False]
    assert d["priv"] == ["machine"] * 4 + ["user"] * 5
    df = t.to_pandas(kinds=["load", "store"])
    assert len(df) == 2
    assert str(df["paddr"].dtype) == "UInt64"
    assert df["paddr"].iloc[0] == 0x80008000 and df["paddr"].isna().iloc[1]
    assert t.to_arrow(vcpus=[5]).num_rows == 0


def test_columns_are_the_records_fields(tmp_path: Path) -> None:
    """columns() gives exactly the records' fields that were asked for, batch by batch."""
    path = tmp_path / "t.trace"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000), Insn(0x1004)])
        w.events(0, [exec_ev(0, 1, pos=0, icount=1), data_ev(1, 0x8000, pos=2, icount=2, store=True, fetches=1)])
        w.end()
    t = open_trace(path)
    whole = t.records()
    got = list(t.columns(["vaddr", "kind"], batch_rows=2))
    assert [sorted(b) for b in got] == [["kind", "vaddr"], ["kind", "vaddr"]]
    assert np.concatenate([b["vaddr"] for b in got]).tolist() == whole["vaddr"].tolist() == [0x1000, 0x1004, 0x8000]
    assert np.concatenate([b["kind"] for b in got]).tolist() == [L.KIND_FETCH, L.KIND_FETCH, L.KIND_STORE]
    with pytest.raises(UserError, match="unknown record column 'bogus'"):
        next(t.columns(["bogus"]))
