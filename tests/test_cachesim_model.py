"""The cache model on hand-computed synthetic patterns, through the Python API (no trace needed).

Each expectation is worked out by hand from the access sequence and the policy's definition; the comments
give the reasoning so that a failure can be checked against it.
"""

from __future__ import annotations

import numpy as np
import pytest

from memtap.analysis.cachesim import Config, Level, Simulator, ops, validate
from memtap.errors import UserError
from memtap.trace import layout

A, B, C, D, E, F = (0x40 * i for i in range(6))


def sim(levels, rows, **options) -> Simulator:
    s = Simulator(Config(levels=tuple(levels), **options))
    s.feed_ops(ops(rows))
    return s


def loads(*addrs, size=8, vcpu=0):
    return [("load", a, size, vcpu) for a in addrs]


def test_direct_mapped_conflicts():
    # 4 sets of one 64-byte line: 0x000 and 0x100 both map to set 0 and evict each other every time,
    # although a fully-associative cache of 4 lines would keep both (so all but the first two are conflicts).
    s = sim([Level("L1", 256, line=64, ways=1)], loads(0x000, 0x100) * 4 + loads(0x040, 0x040), classify=True)
    r = s.result().level("L1")
    assert (r["accesses"], r["misses"], r["hits"]) == (10, 9, 1)
    assert (r["compulsory"], r["capacity"], r["conflict"]) == (3, 0, 6)
    assert r["evictions"] == 7


@pytest.mark.parametrize("policy, misses, present", [("lru", 3, {A, C}), ("fifo", 4, {A, C})])
def test_fully_associative_lru_versus_fifo(policy, misses, present):
    # 2 lines, A B A C A. LRU: C evicts B (A was used last), the final A hits: 3 misses.
    # FIFO: C evicts A (filled first), the final A misses and evicts B: 4 misses.
    s = sim([Level("L1", 128, line=64, ways=0, replacement=policy)], loads(A, B, A, C, A))
    r = s.result().level("L1")
    assert (r["misses"], r["hits"]) == (misses, 5 - misses)
    assert {a for a in (A, B, C) if s.state("L1", 0, a) != "I"} == present


def test_tree_plru_victim_order():
    # One 4-way set. After A B C D fill ways 0-3, tree-PLRU picks way 0 (A) for E, then way 2 (C) for F:
    # B and D stay and hit. True LRU would have evicted A then B, so B misses there.
    rows = loads(A, B, C, D, E, F, B, D)
    plru = sim([Level("L1", 256, line=64, ways=4, replacement="plru")], rows)
    assert {a for a in (A, B, C, D, E, F) if plru.state("L1", 0, a) != "I"} == {B, D, E, F}
    assert (plru.result().level("L1")["misses"], plru.result().level("L1")["hits"]) == (6, 2)
    lru = sim([Level("L1", 256, line=64, ways=4, replacement="lru")], rows)
    assert (lru.result().level("L1")["misses"], lru.result().level("L1")["hits"]) == (7, 1)


def test_random_replacement_is_seeded():
    rows = loads(*[0x40 * (i % 7) for i in range(200)])
    runs = [sim([Level("L1", 256, ways=4, replacement="random")], rows, seed=s).result().level("L1")["misses"]
            for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    # A single 4-way set cycling over 7 lines: the first 7 accesses miss, LRU would miss all 200.
    assert 7 <= runs[2] < 200 and 7 <= runs[0] < 200


def test_write_through_without_allocate():
    # Three store misses go to memory without allocating; the load then fills the line; the last store hits
    # and is written through again, leaving the line clean (E).
    s = sim([Level("L1", 256, ways=4, write_back=False, write_allocate=False)],
            [("store", A, 4)] * 3 + [("load", A, 4), ("store", A, 4)])
    res = s.result()
    r = res.level("L1")
    assert (r["accesses"], r["misses"], r["hits"], r["writebacks"]) == (5, 4, 1, 0)
    assert res.memory() == {"reads": 1, "writes": 4}
    assert s.state("L1", 0, A) == "E"


def test_write_through_with_allocate():
    s = sim([Level("L1", 256, ways=4, write_back=False)], [("store", A, 4), ("store", A, 4)])
    assert s.result().memory() == {"reads": 1, "writes": 2}
    assert s.state("L1", 0, A) == "E"


def test_write_back_without_allocate():
    # The store miss bypasses the cache; after a load fills the line a store only dirties it, and flushing
    # every line writes it back once.
    s = sim([Level("L1", 256, ways=4, write_allocate=False)],
            [("store", A, 8), ("load", A, 8), ("store", A, 8)])
    assert s.state("L1", 0, A) == "M"
    assert s.result().memory() == {"reads": 1, "writes": 1}
    s.feed_ops(ops([("flush_all", 0, 0)]))
    assert s.result().memory() == {"reads": 1, "writes": 2}
    assert s.state("L1", 0, A) == "I"


def test_inclusive_back_invalidation():
    # L1: 2 lines, fully associative. L2: 4 direct-mapped lines, so 0x000 and 0x100 collide in L2 set 0.
    # store A dirties A in L1; load 0x100 makes L2 evict A, which (inclusive) invalidates L1's dirty A and
    # writes it back; load A then misses in L1 and L2 evicts 0x100, invalidating it in L1 too.
    rows = [("store", 0x000, 8), ("load", 0x100, 8), ("load", 0x000, 8)]
    inc = sim([Level("L1", 128, ways=0), Level("L2", 256, ways=1, inclusive=True)], rows).result()
    assert inc.level("L1")["back_invalidations"] == 2
    assert (inc.level("L1")["misses"], inc.level("L2")["evictions"], inc.level("L2")["writebacks"]) == (3, 2, 1)
    assert inc.memory() == {"reads": 3, "writes": 1}
    # Non-inclusive: L2 drops its clean copy of A silently and L1 keeps the dirty one, so the last load hits.
    non = sim([Level("L1", 128, ways=0), Level("L2", 256, ways=1)], rows).result()
    assert non.level("L1")["back_invalidations"] == 0
    assert (non.level("L1")["misses"], non.level("L2")["evictions"], non.level("L2")["writebacks"]) == (2, 1, 0)
    assert non.memory() == {"reads": 2, "writes": 0}


def test_mesi_write_ping_pong():
    # Two vCPUs store to one line in turn, 5 times each. Every store misses (the other vCPU took the line
    # exclusively), each after the first two a coherence miss; every store but the first invalidates the
    # other copy (RFO), and an M copy invalidated by an RFO hands its data over without a memory write.
    rows = [("store", A, 8, v) for _ in range(5) for v in (0, 1)]
    s = sim([Level("L1", 1024, ways=4)], rows, classify=True)
    res = s.result()
    t = res.level("L1")
    assert (t["accesses"], t["misses"], t["invalidations"]) == (10, 10, 9)
    assert (t["compulsory"], t["coherence"], t["capacity"], t["conflict"]) == (2, 8, 0, 0)
    assert [res.level("L1", v)["invalidations"] for v in (0, 1)] == [5, 4]
    assert [res.level("L1", v)["coherence"] for v in (0, 1)] == [4, 4]
    assert res.memory() == {"reads": 10, "writes": 0}
    assert (s.state("L1", 0, A), s.state("L1", 1, A)) == ("I", "M")


def test_mesi_shared_upgrade_and_dirty_read():
    s = sim([Level("L1", 1024, ways=4)], loads(A, vcpu=0) + loads(A, vcpu=1))
    assert (s.state("L1", 0, A), s.state("L1", 1, A)) == ("S", "S")
    s.feed_ops(ops([("store", A, 8, 0)]))  # upgrade: the other copy is invalidated, no miss
    assert (s.state("L1", 0, A), s.state("L1", 1, A)) == ("M", "I")
    s.feed_ops(ops([("load", A, 8, 1)]))  # a read of a modified line: the owner writes it back and shares it
    assert (s.state("L1", 0, A), s.state("L1", 1, A)) == ("S", "S")
    res = s.result()
    assert [res.level("L1", v)["invalidations"] for v in (0, 1)] == [0, 1]
    assert [res.level("L1", v)["writebacks"] for v in (0, 1)] == [1, 0]
    assert res.level("L1")["misses"] == 3 and res.level("L1")["hits"] == 1
    assert res.memory() == {"reads": 3, "writes": 1}


def test_shared_level_counts_per_requesting_vcpu():
    # Private L1s, one shared L2: vCPU 1 finds in L2 the line vCPU 0 brought in.
    s = sim([Level("L1", 1024, ways=4), Level("L2", 4096, ways=4, shared=True)], loads(A, vcpu=0) + loads(A, vcpu=1))
    res = s.result()
    assert [(res.level("L2", v)["accesses"], res.level("L2", v)["misses"]) for v in (0, 1)] == [(1, 1), (1, 0)]
    assert res.memory() == {"reads": 1, "writes": 0}


@pytest.mark.parametrize("split, accesses, misses", [(True, 4, 2), (False, 2, 1)])
def test_line_crossing_access(split, accesses, misses):
    # An 8-byte load at 0x3c covers lines 0x00 and 0x40: two accesses per load when split, one otherwise.
    res = sim([Level("L1", 1024, ways=4)], loads(0x3C, 0x3C), split_lines=split).result()
    r = res.level("L1")
    assert (r["accesses"], r["misses"], r["hits"]) == (accesses, misses, accesses - misses)
    assert res.memory()["reads"] == 2


def test_cache_maintenance_ops():
    L1 = [Level("L1", 1024, ways=4)]
    s = sim(L1, [("store", A, 8), ("clean", A, 8)])
    assert s.state("L1", 0, A) == "E"
    s.feed_ops(ops([("store", B, 8), ("invalidate", B, 8)]))  # dirty data dropped: no write
    assert s.state("L1", 0, B) == "I"
    s.feed_ops(ops([("store", C, 8), ("flush", C, 8)]))
    assert s.state("L1", 0, C) == "I"
    res = s.result()
    r = res.level("L1")
    assert (r["cleaned"], r["discarded"], r["writebacks"]) == (2, 1, 2)
    assert res.memory() == {"reads": 3, "writes": 2}
    # zero allocates a dirty line without reading memory; prefetch fills without a demand access
    s.feed_ops(ops([("zero", D, 64), ("prefetch", E, 8), ("load", E, 8)]))
    res = s.result()
    r = res.level("L1")
    assert (s.state("L1", 0, D), r["zeroed"], r["prefetch_misses"]) == ("M", 1, 1)
    assert (r["accesses"], r["misses"], r["hits"]) == (4, 3, 1)  # the three stores and the load of E
    assert res.memory() == {"reads": 4, "writes": 2}
    s.feed_ops(ops([("flush_all", 0, 0)]))
    assert res.memory()["writes"] == 2 and s.result().memory()["writes"] == 3
    assert {s.state("L1", 0, a) for a in (A, D, E)} == {"I"}


def _records(rows):
    rec = np.zeros(len(rows), layout.RECORD)
    for i, (kind, vaddr, size, flags, value, paddr) in enumerate(rows):
        rec[i]["pos"], rec[i]["kind"], rec[i]["vaddr"], rec[i]["size"] = i, kind, vaddr, size
        rec[i]["flags"], rec[i]["value"], rec[i]["paddr"], rec[i]["pc"] = flags, value, paddr, 0x1000 + 4 * i
    return rec


def test_records_io_bypass_and_marker_reset():
    rec = _records([(layout.KIND_LOAD, 0x2000, 8, 0, 0, 0), (layout.KIND_STORE, 0x3000, 4, layout.RF_IO, 0, 0),
                    (layout.KIND_MARKER, 0, 0, 0, 7, 0), (layout.KIND_LOAD, 0x2000, 8, 0, 0, 0)])
    with Simulator(Config(levels=(Level("L1", 1024, ways=4),))) as s:
        s.feed(rec)
        res = s.result()
    assert (res.level("L1")["accesses"], res.level("L1")["misses"]) == (2, 1)
    assert res.ops() | {} == {**res.ops(), "load": 2, "store": 0, "uncached": 1, "marker": 1}
    with Simulator(Config(levels=(Level("L1", 1024, ways=4),), reset_marker=7)) as s:
        s.feed(rec)
        res = s.result()
    # Statistics restart at the marker; the cache keeps its contents, so the load after it hits.
    assert (res.level("L1")["accesses"], res.level("L1")["hits"], res.ops()["uncached"]) == (1, 1, 0)


def test_records_physical_addresses():
    # Two virtual addresses in different sets, but the same physical line: with physical indexing the
    # second load hits.
    rec = _records([(layout.KIND_LOAD, 0x2000, 8, layout.RF_PADDR, 0, 0x9000),
                    (layout.KIND_LOAD, 0x5040, 8, layout.RF_PADDR, 0, 0x9008)])
    for address, hits in (("virtual", 0), ("physical", 1)):
        with Simulator(Config(levels=(Level("L1", 1024, ways=4),), address=address)) as s:
            s.feed(rec)
            assert s.result().level("L1")["hits"] == hits


def test_misses_by_pc_and_range():
    rows = [("load", a, 8, 0, 0x10) for a in (0x0, 0x40, 0x80)] + [("load", 0x0, 8, 0, 0x20),
                                                                    ("load", 0x1000, 8, 0, 0x20),
                                                                    ("store", 0x2000, 8, 0, 0x30),
                                                                    ("fetch", 0x2040, 4, 0, 0x2040)]
    res = sim([Level("L1", 1024, ways=4), Level("L2", 4096, ways=4)], rows).result()
    for level in ("L1", "L2"):  # every miss is compulsory, so L2 misses exactly where L1 does
        assert res.misses_by_pc(level).tolist() == [(0x10, 0, 3, 0), (0x20, 0, 1, 0), (0x30, 0, 0, 1),
                                                    (0x2040, 1, 0, 0)]
        assert res.misses_by_range(level).tolist() == [(0x0, 0, 3, 0), (0x1000, 0, 1, 0), (0x2000, 1, 0, 1)]
    assert res.top("L1", 2, "pc")["pc"].tolist() == [0x10, 0x20]


def test_store_hits_and_recency_differ_from_pycachesim():
    # 2-line LRU: load A, load B, store A, load C, load A. memtap: the store hit makes A recent, C evicts B,
    # the last load hits. pycachesim: a store hit does not touch recency, so C evicts A and the last load
    # misses; and it counts only load hits as HIT.
    rows = loads(A, B) + [("store", A, 8)] + loads(C, A)
    mt = sim([Level("L1", 128, ways=0)], rows).result()
    assert (mt.level("L1")["hits"], mt.level("L1")["misses"]) == (2, 3)
    pc = sim([Level("L1", 128, ways=0)], rows, semantics="pycachesim").result()
    assert (pc.level("L1")["hits"], pc.level("L1")["misses"]) == (1, 4)
    # ... and C evicted the dirty A: one write-back (EVICT).
    assert pc.pycachesim_counts("L1") == {"HIT_count": 0, "MISS_count": 4, "EVICT_count": 1}


def test_writeback_miss_fetches_only_under_pycachesim_semantics():
    # One-line L1 and L2 over a 4-way L3: store A, load B. L1's dirty A comes back to L2, which now holds B:
    # a write-back miss. memtap allocates the whole line without reading it; pycachesim reads it from L3.
    levels = [Level("L1", 64, ways=1), Level("L2", 64, ways=1), Level("L3", 1024, ways=4)]
    rows = [("store", A, 8), ("load", B, 8)]
    mt = sim(levels, rows).result()
    pc = sim(levels, rows, semantics="pycachesim").result()
    for res in (mt, pc):
        assert res.level("L2")["writeback_misses"] == 1
    assert (mt.level("L3")["accesses"], pc.level("L3")["accesses"]) == (2, 3)
    assert (mt.level("L3")["fills_for_writebacks"], pc.level("L3")["fills_for_writebacks"]) == (0, 1)


@pytest.mark.parametrize("levels, field", [
    ([Level("L1D", 30000, ways=8)], "L1D.size: 30000 is not a multiple of line * ways = 64 * 8"),
    ([Level("L1D", 32768, line=48, ways=8)], "L1D.line: 48 is not a power of two"),
    ([Level("L1D", 1536, ways=8)], "L1D.size: gives 3 sets"),
    ([Level("L1D", 32768), Level("L2", 16384, inclusive=True)], "L2.size: an inclusive level of 16384 bytes"),
    ([Level("L2", 32768, shared=True), Level("L3", 65536)], "L3.shared: a private level cannot be below"),
    ([Level("L1", 1536, ways=6, replacement="plru")], "L1.ways: tree-PLRU needs a power-of-two"),
    ([Level("L1", 32768, replacement="mru")], "L1.replacement: 'mru' is not one of"),
    ([Level("L2", 65536), Level("L1D", 32768, side="data")], "L1D.side: a split (data) level cannot be below"),
    ([Level("L1", 32768, line=128), Level("L2", 65536, line=64)], "L2.line: 64 is smaller than L1.line 128"),
])
def test_impossible_geometries_name_the_field(levels, field):
    with pytest.raises(UserError) as exc:
        validate(Config(levels=tuple(levels)))
    assert str(exc.value).startswith(field)


def test_columns_equal_records_and_absent_columns_read_as_zero():
    rec = _records([(layout.KIND_LOAD, 0x2000, 8, 0, 0, 0), (layout.KIND_STORE, 0x2040, 4, 0, 0, 0),
                    (layout.KIND_LOAD, 0x2000, 8, 0, 0, 0), (layout.KIND_FETCH, 0x9000, 4, 0, 0, 0)])
    cfg = Config(levels=(Level("L1", 1024, ways=4),))
    with Simulator(cfg) as s:
        s.feed(rec)
        from_records = s.result().to_dict()
    with Simulator(cfg) as s:
        # Contiguous columns of other integer types are converted; vcpu, paddr and value are absent (zeros).
        s.feed({"kind": rec["kind"].astype(np.int64), "vaddr": rec["vaddr"].copy(), "size": rec["size"].copy(),
                "flags": rec["flags"].copy(), "pc": rec["pc"].copy()})
        from_columns = s.result().to_dict()
    assert from_columns == from_records
    assert from_records["levels"][0]["total"]["misses"] == 3 and from_records["levels"][0]["total"]["hits"] == 1
    assert Simulator(cfg).input_columns() == ["kind", "vcpu", "size", "flags", "vaddr", "pc", "value"]
    assert Simulator(Config(levels=cfg.levels, address="physical", track=False)).input_columns() == [
        "kind", "vcpu", "size", "flags", "vaddr", "paddr", "value"]
    with pytest.raises(UserError, match="columns of different lengths"):
        Simulator(cfg).feed({"kind": rec["kind"], "vaddr": rec["vaddr"][:2]})
    with pytest.raises(UserError, match="expected layout.RECORD records or a dict of record columns"):
        Simulator(cfg).feed(np.zeros(3, np.uint64))
