"""The cache simulator on real recorded guest traces: identical counts to pycachesim, and the CLI."""

from __future__ import annotations

import json

import pytest
from guestlib import guest, memtap, qemu_command, record, symbols

import memtap as mt
from memtap.analysis import cachesim
from memtap.analysis.cachesim import Config, Level
from memtap.trace.layout import KIND_FETCH, KIND_LOAD, KIND_STORE

pycachesim = pytest.importorskip("cachesim")

# Small enough that the recorded windows evict at every level and write dirty lines back.
LEVELS = (("L1", 4096, 4), ("L2", 32768, 8), ("L3", 131072, 16))


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """(arch, program, events) -> a trace of the first 1.5 million instructions after MEMTAP_START."""
    made = {}

    def get(arch: str, program: str, events: str = "load,store"):
        key = (arch, program, events)
        if key not in made:
            path = tmp_path_factory.mktemp("cachesim") / f"{arch}-{program}-{events.replace(',', '+')}.trace"
            proc = record(path, arch, program, "--events", events, "--start-on-marker", "--max-insns", "1500000")
            assert proc.returncode == 0, proc.stderr
            made[key] = path
        return made[key]

    return get


def pycachesim_counts(path, policy: str) -> dict[str, dict[str, int]]:
    """pycachesim over the trace: fetches and loads as loads, stores as stores, each with its size."""
    below, caches = None, []
    for name, size, ways in reversed(LEVELS):
        below = pycachesim.Cache(name, size // (64 * ways), ways, 64, policy, load_from=below, store_to=below)
        caches.append(below)
    mem = pycachesim.MainMemory()
    mem.load_to(caches[0])
    mem.store_from(caches[0])
    sim = pycachesim.CacheSimulator(caches[-1], mem)
    be = sim.first_level.backend
    recs = mt.open(path).records()
    for kind, addr, size in zip(recs["kind"].tolist(), recs["vaddr"].tolist(), recs["size"].tolist(), strict=True):
        if kind == KIND_STORE:
            be.store(addr, length=size)
        elif kind in (KIND_FETCH, KIND_LOAD):
            be.load(addr, length=size)
    return {c.name: {k: c.stats()[k] for k in ("HIT_count", "MISS_count", "EVICT_count")} for c in caches}


@pytest.mark.parametrize("arch, program, events", [
    ("riscv64", "sort", "load,store"), ("riscv64", "ptrchase", "load,store"), ("riscv64", "matmul", "load,store"),
    ("x86_64", "sort", "load,store"), ("x86_64", "crc32", "load,store"), ("riscv64", "sort", "fetch,load,store"),
])
@pytest.mark.parametrize("policy", ["LRU", "FIFO"])
def test_counts_equal_pycachesim(traces, arch, program, events, policy):
    path = traces(arch, program, events)
    cfg = Config(levels=tuple(Level(n, size, ways=w, replacement=policy.lower()) for n, size, w in LEVELS),
                 semantics="pycachesim")
    res = cachesim.simulate_trace(mt.open(path), cfg)   # fed decoded columns, as `memtap cachesim` is
    theirs = pycachesim_counts(path, policy)
    assert {n: res.pycachesim_counts(n) for n, *_ in LEVELS} == theirs
    # Not a vacuous match: the window misses and writes back at every level.
    assert all(theirs[n]["MISS_count"] > 0 for n, *_ in LEVELS)
    if program == "sort":
        assert all(theirs[n]["EVICT_count"] > 0 for n, *_ in LEVELS)


def test_pycachesim_store_hits_do_not_refresh_lru():
    # pycachesim's side of the difference tested in test_cachesim_model: a store hit leaves recency alone.
    c = pycachesim.Cache("L1", 1, 2, 64, "LRU")
    mem = pycachesim.MainMemory()
    mem.load_to(c)
    mem.store_from(c)
    sim = pycachesim.CacheSimulator(c, mem)
    for op, addr in (("load", 0x0), ("load", 0x40), ("store", 0x0), ("load", 0x80), ("load", 0x0)):
        getattr(sim, op)(addr, length=8)
    assert (c.stats()["HIT_count"], c.stats()["MISS_count"]) == (0, 4)


def test_smp_stores_miss_once_per_line(tmp_path):
    # smp: vCPU k stores 256 u32 to its own 1 KiB slice of the page-aligned mt_smp_region: 16 lines of 64 bytes
    # each, so 64 store misses in that page at L1D, and no loads from it.
    arch = "riscv64"
    region = symbols(guest(arch, "smp"))["mt_smp_region"]
    path = tmp_path / "smp.trace"
    proc = record(path, arch, "smp", "--start-on-marker", smp=4)
    assert proc.returncode == 0, proc.stderr
    out = memtap("cachesim", str(path), "--preset", "cortex-a53", "--json", "--top", "100000")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["vcpus"] == 4 and [lv["name"] for lv in doc["levels"]] == ["L1I", "L1D", "L2"]
    l1d = doc["levels"][1]
    row = next(r for r in l1d["top_ranges"] if r["start"] == region)
    assert (row["fetch"], row["load"], row["store"]) == (0, 0, 64)
    assert [v["store"]["accesses"] >= 256 for v in l1d["vcpus"]] == [True] * 4


def test_cli_text_and_json_agree(traces):
    path = traces("riscv64", "matmul")
    args = ["cachesim", str(path), "--cache", "L1:4KiB:4", "--cache", "L2:32KiB:8", "--classify", "--top", "3"]
    js = memtap(*args, "--json")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    res = cachesim.simulate(mt.open(path).batches(order="pos"),
                            Config(levels=(Level("L1", 4096, ways=4), Level("L2", 32768, ways=8)), classify=True))
    for lv in doc["levels"]:
        assert lv["total"] == json.loads(json.dumps(res.level(lv["name"])))
        assert [r["pc"] for r in lv["top_pcs"]] == res.top(lv["name"], 3)["pc"].tolist()
    l1 = doc["levels"][0]["total"]
    assert l1["compulsory"] + l1["capacity"] + l1["conflict"] == l1["misses"]
    text = memtap(*args)
    assert text.returncode == 0, text.stderr
    row = next(line for line in text.stdout.splitlines() if line.startswith("L1 "))
    cells = row.split()
    assert [int(cells[6]), int(cells[7])] == [l1["accesses"], l1["misses"]]
    assert "L1: top 3 misses by PC" in text.stdout


@pytest.mark.parametrize("toml, message", [
    ('[[level]]\nname = "L1D"\nsize = 30000\nways = 8\n', "memtap: L1D.size: 30000 is not a multiple"),
    ('[[level]]\nname = "L1"\nsize = "32KiB"\nline = 48\n', "memtap: L1.line: 48 is not a power of two"),
    ('[[level]]\nname = "L1"\nsize = "32KiB"\ncolour = 1\n', "memtap: L1.colour: unknown key"),
    ('[[level]]\nname = "L1"\nsize = "32KiB"\n[[level]]\nname = "L2"\nsize = "16KiB"\ninclusive = true\n',
     "memtap: L2.size: an inclusive level of 16384 bytes cannot hold L1"),
])
def test_cli_bad_geometry_is_a_one_line_error(traces, tmp_path, toml, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    proc = memtap("cachesim", str(traces("riscv64", "matmul")), "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_cli_bad_cache_flag_and_preset(traces):
    path = str(traces("riscv64", "matmul"))
    proc = memtap("cachesim", path, "--cache", "L1:32KiB:eight")
    assert (proc.returncode, proc.stderr) == (2, "memtap: L1.ways: 'eight' is not a number or 'full'\n")
    proc = memtap("cachesim", path, "--preset", "pentium")
    assert proc.returncode == 2
    assert proc.stderr == "memtap: no cache preset 'pentium' (presets: cortex-a53, e500mc, zen4)\n"


@pytest.mark.parametrize("name", ["cortex-a53", "e500mc", "zen4"])
def test_presets_load(name):
    cfg = cachesim.preset(name)
    assert cfg.name == name and [lv.line for lv in cfg.levels] == [64] * len(cfg.levels)


def test_cache_maintenance_records_drive_the_model(tmp_path):
    """The riscv64 `cmo` guest's cbo.* and prefetch records become the model's clean, flush, invalidate, zero and
    prefetch operations; prefetch.i and fence.i have no counterpart and are ignored (docs/cachesim.md)."""
    path = tmp_path / "cmo.trace"
    cmd = ["record", "-o", str(path), "--start-on-marker", "--events", "load,store", "--",
           *qemu_command("riscv64", guest("riscv64", "cmo"))]
    assert memtap(*cmd).returncode == 0
    cfg = Config(levels=(Level(name="L1D", size=1024, ways=2, line=64),))
    sim = cachesim.Simulator(cfg)
    assert sim.input_columns() == ["kind", "vcpu", "size", "flags", "vaddr", "pc", "value"]
    for cols in mt.open(path).columns(sim.input_columns(), order="pos"):
        sim.feed(cols)
    res = sim.result()
    ops = res.ops()
    assert {k: ops[k] for k in ("clean", "flush", "invalidate", "zero", "prefetch")} == {
        "clean": 1, "flush": 1, "invalidate": 1, "zero": 1, "prefetch": 2}
    records = sum(len(b) for b in mt.open(path).batches())
    assert sum(ops.values()) == records - 2   # prefetch.i and fence.i are ignored
    line = symbols(guest("riscv64", "cmo"))["cmo_line"]
    l1 = res.level("L1D")
    # cbo.zero allocates the line without a fetch, so the 64 byte stores that follow it, the AMO, LR and SC all
    # hit; the two prefetches miss (lines +64 and +128) and count as prefetches, not demand accesses.
    assert l1["misses"] == 0 and l1["prefetch_misses"] == 2
    assert sim.state("L1D", 0, line) == "M"


def test_live_from_the_ring_equals_offline(tmp_path):
    """`memtap cachesim --ring NAME` during a run gives exactly what `memtap cachesim TRACE` gives afterwards."""
    import subprocess
    import sys

    from ringlib import Recording, ring_name

    name, path = ring_name(), tmp_path / "demo.trace"
    live = subprocess.Popen([sys.executable, "-m", "memtap.cli.main", "cachesim", "--ring", name, "--preset",
                             "cortex-a53", "--json", "--top", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    rec = Recording(name, "riscv64", "demo", "--ring-wait", "1", trace=path)
    assert rec.wait() == 0, rec.stderr
    out, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    offline = memtap("cachesim", str(path), "--preset", "cortex-a53", "--json", "--top", "5")
    assert offline.returncode == 0, offline.stderr
    a, b = json.loads(out), json.loads(offline.stdout)
    assert a == b
    assert a["records"] > 3_000_000 and a["ops"]["fetch"] > 3_000_000
