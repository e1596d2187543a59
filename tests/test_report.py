"""memtap report's numbers (the JSON behind every plot and table) on real recordings of the bundled guests.

Every count is checked exactly against what `memtap stats` says or what the reader's records give when counted
here with plain numpy; the guests' known behaviour gives absolute values (region: 1536 loads and 768 stores in
its page; smp: four vCPUs; cover: known calls). The page itself is tested in a browser in test_report_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tracegen
from elftools.elf.elffile import ELFFile
from guestlib import ARCHES, guest, memtap, record, symbols

import memtap as mt
from memtap.analysis import cachesim
from memtap.analysis.coverage import coverage
from memtap.analysis.execution import execution_counts
from memtap.analysis.symbols import ElfSpec, Symbols
from memtap.report.aggregate import EVENT_CAP, TIME_BINS
from memtap.trace import layout as L

ARCH = "riscv64"


def report(trace: Path, *args: str) -> dict:
    """`memtap report TRACE ARGS --json -` as a user runs it; its JSON document."""
    proc = memtap("report", str(trace), "--json", "-", *args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def stats(trace: Path) -> dict:
    proc = memtap("stats", str(trace), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    """Recordings: region (traced from its START marker), smp (4 vCPUs), cover, seq, and region on each arch."""
    out = {}
    d = tmp_path_factory.mktemp("report")
    for name, program, arch, opts, smp in (
            ("region", "region", ARCH, ("--start-on-marker",), 1), ("smp", "smp", ARCH, (), 4),
            ("cover", "cover", ARCH, (), 1), ("seq", "seq", ARCH, (), 1),
            *((f"region-{a}", "region", a, (), 1) for a in ARCHES)):
        path = d / f"{name}.trace"
        proc = record(path, arch, program, *opts, smp=smp)
        assert proc.returncode == 0, proc.stderr
        out[name] = path
    return out


def records(path: Path, **kw) -> np.ndarray:
    return mt.open(path).records(**kw)


def touches(rec: np.ndarray, shift: int) -> dict[int, list[int]]:
    """{unit: [fetch, load, store touches]} of fetch, load and store records (a straddling access touches both
    units), counted here from the records."""
    acc = rec[rec["kind"] <= L.KIND_STORE]
    first = acc["vaddr"] >> np.uint64(shift)
    last = (acc["vaddr"] + np.maximum(acc["size"], 1).astype(np.uint64) - np.uint64(1)) >> np.uint64(shift)
    out: dict[int, list[int]] = {}
    for units in (first, last[last != first]):
        kinds = acc["kind"] if units is first else acc["kind"][last != first]
        for u, k in zip(units.tolist(), kinds.tolist(), strict=True):
            out.setdefault(u << shift, [0, 0, 0])[k] += 1
    return out


@pytest.mark.parametrize("name", ["region", "smp", "cover", "seq"])
def test_overview_equals_stats(traces: dict[str, Path], name: str) -> None:
    doc, s = report(traces[name]), stats(traces[name])
    o = doc["overview"]
    assert o["by_kind"] == s["by_kind"] and o["records"] == s["records"]
    assert o["by_priv"] == s["by_priv"]
    assert o["pos_range"] == s["pos_range"]
    assert {v: {k: d[k] for k in L.KIND_NAMES} for v, d in o["by_vcpu"].items()} == \
        {v: {k: d[k] for k in L.KIND_NAMES} for v, d in s["by_vcpu"].items()}
    assert {v: d["icount_last"] for v, d in o["by_vcpu"].items()} == s["instructions"]["max_icount_by_vcpu"]
    assert doc["pages"]["distinct_data"] == s["footprint"]["pages_4k"]
    assert doc["lines"]["distinct_data"] == s["footprint"]["lines_64b"]
    assert o["complete"] and not o["truncated"] and o["target"] == ARCH
    assert o["executed_insns"] == mt.open(traces[name]).end["executed_insns"]


@pytest.mark.parametrize("name", ["region", "smp", "cover"])
def test_pages_and_lines_exact(traces: dict[str, Path], name: str) -> None:
    doc = report(traces[name], "--top", "100000")
    rec = records(traces[name])
    for key, shift in (("pages", 12), ("lines", 6)):
        got = {r["address"]: [r["fetch"], r["load"], r["store"]] for r in doc[key]["rows"]}
        assert got == touches(rec, shift)
        totals = [r["total"] for r in doc[key]["rows"]]
        assert totals == sorted(totals, reverse=True)


def test_top_keeps_the_hottest(traces: dict[str, Path]) -> None:
    doc = report(traces["smp"], "--top", "3")
    want = sorted(touches(records(traces["smp"]), 6).items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:3]
    assert [(r["address"], [r["fetch"], r["load"], r["store"]]) for r in doc["lines"]["rows"]] == want
    assert doc["lines"]["distinct"] == len(touches(records(traces["smp"]), 6))


@pytest.mark.parametrize("name", ["region", "smp", "seq"])
def test_time_bins_exact(traces: dict[str, Path], name: str) -> None:
    doc = report(traces[name])
    rec = records(traces[name])
    t = doc["time"]
    lo, hi = int(rec["pos"].min()), int(rec["pos"].max())
    shift = t["shift"]
    assert (hi >> shift) - (lo >> shift) + 1 <= TIME_BINS
    assert shift == 0 or (hi >> (shift - 1)) - (lo >> (shift - 1)) + 1 > TIME_BINS   # the finest that fits
    assert t["first_bin"] == lo >> shift and t["bins"] == (hi >> shift) - (lo >> shift) + 1
    b = (rec["pos"] >> np.uint64(shift)).astype(np.int64) - t["first_bin"]
    for code, kind in enumerate(L.KIND_NAMES):
        assert t["by_kind"][kind] == np.bincount(b[rec["kind"] == code], minlength=t["bins"]).tolist()


@pytest.mark.parametrize("name", ["region", "smp", "cover"])
def test_heatmap_exact(traces: dict[str, Path], name: str) -> None:
    """Each region's cells equal the 2-D histogram of the records' first bytes, and the regions share out every
    fetch, load and store exactly once."""
    elf = guest(ARCH, name)
    for args in ((), ("--elf", str(elf))):
        doc = report(traces[name], *args)
        h, t = doc["heatmap"], doc["time"]
        rec = records(traces[name])
        acc = rec[rec["kind"] <= L.KIND_STORE]
        cell = acc["vaddr"] >> np.uint64(h["addr_shift"])
        col = (acc["pos"] >> np.uint64(t["shift"])).astype(np.int64) - t["first_bin"]
        owner = np.full(len(acc), -1)
        for i, r in enumerate(h["regions"]):
            inside = (cell >= np.uint64(r["lo_bin"])) & (cell <= np.uint64(r["hi_bin"]))
            assert not (owner[inside] >= 0).any(), "regions overlap"
            owner[inside] = i
            row = ((cell[inside] - np.uint64(r["lo_bin"])) >> np.uint64(r["row_shift"])).astype(np.int64)
            want: dict[tuple[int, int], list[int]] = {}
            for rw, c, k in zip(row.tolist(), col[inside].tolist(), acc["kind"][inside].tolist(), strict=True):
                want.setdefault((rw, c), [0, 0, 0])[k] += 1
            cells = r["cells"]
            got = {(rw, c): [f, lo, s] for rw, c, f, lo, s in zip(cells["row"], cells["bin"], cells["fetch"],
                                                                   cells["load"], cells["store"], strict=True)}
            assert got == want
            assert r["rows"] <= 128 and r["lo"] == r["lo_bin"] << h["addr_shift"]
            assert [r["accesses"][k] for k in ("fetch", "load", "store")] == \
                np.bincount(acc["kind"][inside], minlength=3).tolist()
        assert (owner >= 0).all(), "an access outside every region"


def test_region_guest_known_counts(traces: dict[str, Path]) -> None:
    """Between START and STOP the region guest makes 1536 loads and 768 stores in its 4 KiB mt_region and
    nothing else there: 24 loads and 12 stores on each of its 64 lines; with its ELF the page is in the data
    region (.bss), the code in the code region (.text), its stack accesses in the stack region (.stack)."""
    elf = guest(ARCH, "region")
    base = symbols(elf)["mt_region"]
    doc = report(traces["region"], "--elf", str(elf))
    page = next(r for r in doc["pages"]["rows"] if r["address"] == base)
    assert (page["fetch"], page["load"], page["store"], page["io"]) == (0, 1536, 768, 0)
    lines = [r for r in doc["lines"]["rows"] if base <= r["address"] < base + 4096]
    assert len(lines) == 64 and all((r["load"], r["store"], r["readers"], r["writers"]) == (24, 12, [0], [0])
                                    for r in lines)
    classes = {r["class"]: r for r in doc["heatmap"]["regions"]}
    data = classes["data"]
    assert data["lo"] <= base < data["hi"] and ".bss" in data["sections"]
    assert ".text" in classes["code"]["sections"] and classes["code"]["accesses"]["fetch"] == \
        doc["overview"]["by_kind"]["fetch"]
    assert "stack" not in classes or ".stack" in classes["stack"]["sections"]


@pytest.mark.parametrize("arch", ARCHES)
def test_region_page_on_each_arch(traces: dict[str, Path], arch: str) -> None:
    """The whole run (boot included: .bss is zeroed first) on each arch; mt_region's page still has exactly the
    program's 1536 loads, and its stores are the program's 768 plus the zeroing, as the reader counts them."""
    path = traces[f"region-{arch}"]
    base = symbols(guest(arch, "region"))["mt_region"]
    doc = report(path, "--top", "100000")
    page = next(r for r in doc["pages"]["rows"] if r["address"] == base)
    assert page["load"] == 1536 and page["fetch"] == 0
    assert page["store"] == touches(records(path), 12)[base][2] >= 768


def test_functions_and_coverage_of_cover(traces: dict[str, Path]) -> None:
    """Per-function counts and the coverage summary equal memtap's own analyses run on the reader's records;
    square is entered 15 times, never_called never."""
    elf = guest(ARCH, "cover")
    doc = report(traces["cover"], "--elf", str(elf), "--top", "1000")
    t = mt.open(traces["cover"])
    syms = Symbols([ElfSpec(elf)], t.arch, lambda m: None)
    counts = execution_counts(t)
    rep = coverage(counts, syms)
    files = {f["path"]: f for f in doc["coverage"]["files"]}
    for f in rep.files:
        got = files[f.path]
        assert (got["lines"], got["lines_hit"]) == (len(f.lines), sum(c > 0 for c in f.lines.values()))
        assert (got["functions"], got["functions_hit"]) == (len(f.functions), sum(fn.count > 0 for fn in f.functions))
    assert list(doc["coverage"]["totals"].values()) == list(rep.totals())
    cover = next(f for f in doc["coverage"]["files"] if f["file"] == "cover.c")
    assert cover["functions"] == 4 and cover["functions_hit"] == 3   # never_called never runs
    fns = {r["name"]: r for r in doc["functions"]["rows"]}
    with open(elf, "rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name("square")
    lo, hi = sym["st_value"], sym["st_value"] + sym["st_size"]
    in_square = (counts.pc >= lo) & (counts.pc < hi)
    assert fns["square"]["executed"] == int(counts.executed[in_square].sum())
    assert fns["square"]["loads"] == int(counts.loads[in_square].sum())
    assert int(counts.count_at(np.array([lo], np.uint64))[0]) == 15
    assert "never_called" not in fns


def memory_accesses(rec: np.ndarray) -> np.ndarray:
    """The loads and stores the transfer rule applies to: to memory, not MMIO (device registers are no cache
    lines)."""
    data = rec[(rec["kind"] == L.KIND_LOAD) | (rec["kind"] == L.KIND_STORE)]
    return data[(data["flags"] & L.RF_IO) == 0]


def reference_transfers(rec: np.ndarray, vcpus: int) -> tuple[np.ndarray, dict[int, int]]:
    """mtrace's rule, one access at a time, written from its statement: a load is a transfer from the last
    writer when another vCPU wrote the line since this vCPU's last access to it; a store is a transfer from the
    most recent other accessor when another vCPU accessed the line since its last write."""
    matrix = np.zeros((vcpus, vcpus), np.int64)
    per: dict[int, int] = {}
    state: dict[int, tuple[set, int | None, list]] = {}
    data = memory_accesses(rec)
    for a, size, v, k in zip(data["vaddr"].tolist(), data["size"].tolist(), data["vcpu"].tolist(),
                             data["kind"].tolist(), strict=True):
        first, last = a >> 6, (a + max(size, 1) - 1) >> 6
        for line in ([first] if last == first else [first, last]):
            holders, writer, recent = state.setdefault(line, (set(), None, []))
            src = None
            if k == L.KIND_STORE:
                if holders - {v}:
                    src = next(x for x in reversed(recent) if x != v)
                state[line] = ({v}, v, [v])
            else:
                if writer is not None and writer != v and v not in holders:
                    src = writer
                holders.add(v)
                recent.append(v)
            if src is not None:
                matrix[src, v] += 1
                per[line << 6] = per.get(line << 6, 0) + 1
    return matrix, per


def test_sharing_of_smp(traces: dict[str, Path]) -> None:
    """The transfer matrix and per-line transfers equal the rule applied here record by record in global order;
    the line of the `done` flags, which each vCPU stores once and vCPU 0 polls, moves at least at the stores of
    the second, third and fourth vCPU to store there. The CLINT's msip line, which vCPU 0 stores to wake each
    other vCPU and each stores to clear its own, is MMIO: no cache line, not listed."""
    elf = guest(ARCH, "smp")
    doc = report(traces["smp"], "--top", "100000")
    sh = doc["sharing"]
    rec = records(traces["smp"], order="pos")
    matrix, per = reference_transfers(rec, 4)
    assert sh["vcpus"] == [0, 1, 2, 3] and sh["implementation"] == "memtap.analysis.sharing"
    assert sh["matrix"] == matrix.tolist() and sh["transfers"] == int(matrix.sum())
    assert {r["address"]: r["transfers"] for r in sh["lines"] if r["transfers"]} == per
    done = symbols(elf)["done"] & ~63
    line = next(r for r in sh["lines"] if r["address"] == done)
    assert line["writers"] == [0, 1, 2, 3] and 0 in line["readers"]
    assert line["transfers"] >= 3
    # every line two or more vCPUs loaded or stored, and no other; with its touches from the line table
    t = touches(memory_accesses(rec), 6)
    shared = {a for a in t if len({int(v) for v in _vcpus_on(rec, a)}) >= 2}
    assert sh["shared_lines"] == len(shared) and {r["address"] for r in sh["lines"]} == shared
    assert all([r["loads"], r["stores"]] == t[r["address"]][1:] for r in sh["lines"])
    mmio = touches(rec[(rec["flags"] & L.RF_IO) != 0], 6)
    msip = {a for a in mmio if len({int(v) for v in _vcpus_on(rec, a)}) == 4}
    assert len(msip) == 1 and not msip & shared
    # the same numbers as `memtap sharing` on virtual addresses: one implementation of the rule
    proc = memtap("sharing", str(traces["smp"]), "--address", "virtual", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = json.loads(proc.stdout)["lines"]
    assert sorted((r["address"], r["transfers"], r["readers"], r["writers"]) for r in sh["lines"]) == \
        sorted((r["address"], r["transfers"], r["readers"], r["writers"]) for r in lines)


def _vcpus_on(rec: np.ndarray, line: int) -> np.ndarray:
    d = rec[(rec["kind"] == L.KIND_LOAD) | (rec["kind"] == L.KIND_STORE)]
    first = d["vaddr"] & ~np.uint64(63)
    last = (d["vaddr"] + np.maximum(d["size"], 1).astype(np.uint64) - np.uint64(1)) & ~np.uint64(63)
    return np.unique(d["vcpu"][(first == np.uint64(line)) | (last == np.uint64(line))])


def test_one_vcpu_says_so(traces: dict[str, Path]) -> None:
    doc = report(traces["region"])
    assert doc["sharing"] is None and "one vCPU" in doc["unavailable"]["sharing"]


def test_cache_miss_rates_per_bin(traces: dict[str, Path]) -> None:
    """Per level, the bins add up to `memtap cachesim`'s totals, and the misses up to the end of a bin equal a
    fresh simulation of the records before that bin's end."""
    path = traces["smp"]
    doc = report(path, "--cache", "zen4")
    proc = memtap("cachesim", str(path), "--preset", "zen4", "--json")
    want = {lv["name"]: lv["total"] for lv in json.loads(proc.stdout)["levels"]}
    t = doc["time"]
    for lv in doc["cache"]["levels"]:
        assert sum(lv["per_bin"]["accesses"]) == lv["accesses"] == want[lv["name"]]["accesses"]
        assert sum(lv["per_bin"]["misses"]) == lv["misses"] == want[lv["name"]]["misses"]
        assert len(lv["per_bin"]["misses"]) == t["bins"]
    trace = mt.open(path)
    for b in (t["bins"] // 5, t["bins"] // 2, t["bins"] - 2):
        end = (t["first_bin"] + b + 1) << t["shift"]
        res = cachesim.simulate(trace.batches(order="pos", pos_range=(None, end)), cachesim.preset("zen4"), vcpus=4)
        for lv in doc["cache"]["levels"]:
            assert sum(lv["per_bin"]["misses"][: b + 1]) == res.level(lv["name"])["misses"]
            assert sum(lv["per_bin"]["accesses"][: b + 1]) == res.level(lv["name"])["accesses"]


def test_cache_top_functions(traces: dict[str, Path]) -> None:
    """With --elf, the functions with the most misses at the first data level and the last level, each the sum
    of its PCs' misses from the simulator."""
    elf = guest(ARCH, "cover")
    doc = report(traces["cover"], "--elf", str(elf), "--cache", "cortex-a53", "--top", "1000")
    c = doc["cache"]
    assert c["top_levels"] == ["L1D", "L2"]
    res = cachesim.simulate(mt.open(traces["cover"]).batches(order="pos"), cachesim.preset("cortex-a53"))
    syms = Symbols([ElfSpec(elf)], ARCH, lambda m: None)
    for level in c["top_levels"]:
        rows = res.misses_by_pc(level)
        fn = syms.function_index(rows["pc"])
        want: dict[str, int] = {}
        for f, n in zip(fn.tolist(), (rows["fetch"] + rows["load"] + rows["store"]).tolist(), strict=True):
            name = syms.functions[f].name if f >= 0 else "???"
            want[name] = want.get(name, 0) + n
        assert {r["name"]: r[f"misses_{level}"] for r in c["functions"][level]} == \
            {k: v for k, v in want.items() if v}


def test_selection(traces: dict[str, Path]) -> None:
    """--range and --vcpu: the counts of exactly the selected records."""
    path = traces["smp"]
    rec = records(path)
    lo, hi = 1000, int(rec["pos"][rec["vcpu"] == 2].max())   # vCPU 2's records but its last
    doc = report(path, "--range", f"{lo}:{hi}", "--vcpu", "0", "--vcpu", "2")
    sel = rec[(rec["pos"] >= lo) & (rec["pos"] < hi) & np.isin(rec["vcpu"], [0, 2])]
    assert doc["overview"]["records"] == len(sel)
    assert doc["overview"]["by_kind"] == {k: int((sel["kind"] == c).sum()) for c, k in enumerate(L.KIND_NAMES)}
    assert sorted(doc["overview"]["by_vcpu"]) == ["0", "2"]
    assert doc["overview"]["pos_range"] == [int(sel["pos"].min()), int(sel["pos"].max())]
    assert doc["overview"]["selection"] == {"pos_range": [lo, hi], "vcpus": [0, 2]}
    assert doc["sharing"]["vcpus"] == [0, 2]


def test_markers_drawn(traces: dict[str, Path]) -> None:
    """seq's marker record is drawn where the reader has it; exceptions: none recorded; system calls: this
    format has none."""
    doc = report(traces["seq"])
    rec = records(traces["seq"])
    m = rec[rec["kind"] == L.KIND_MARKER]
    assert doc["events"]["marker"]["count"] == len(m) == 1
    assert doc["events"]["marker"]["drawn"] == [{"pos": int(m["pos"][0]), "vcpu": 0, "value": int(m["value"][0])}]
    assert doc["events"]["exception"] == {"recorded": True, "count": 0, "drawn": []}
    assert doc["events"]["syscall"]["recorded"] is False and doc["events"]["syscall"]["count"] == 0


def test_many_markers_are_binned(tmp_path: Path) -> None:
    """The markers guest makes 1,000,000 MEMTAP_MARK(7) records: too many to draw; counted exactly per bin."""
    path = tmp_path / "markers.trace"
    proc = record(path, ARCH, "markers", timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = report(path)
    ev = doc["events"]["marker"]
    assert ev["count"] == 1_000_000 > EVENT_CAP and "drawn" not in ev
    assert sum(doc["time"]["by_kind"]["marker"]) == 1_000_000


# --- bad input ---------------------------------------------------------------------------------------------------

def test_trace_without_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.trace"
    tracegen.empty_trace(path)
    out = tmp_path / "empty.html"
    doc = report(path, "-o", str(out), "--cache", "zen4")
    assert doc["overview"]["records"] == 0 and doc["time"] is None and doc["heatmap"] is None
    assert doc["notes"] == ["Nothing to plot: the trace holds no records."]
    assert set(doc["unavailable"]) == {"heatmap", "functions", "source_lines", "coverage", "cache", "sharing"}
    assert out.stat().st_size > 1_000_000   # the page, plotly.js inside it


def test_truncated_trace(traces: dict[str, Path], tmp_path: Path) -> None:
    """A recording cut in the middle of a chunk: the report covers the whole chunks, says it is truncated, and its
    counts are the reader's."""
    full = tmp_path / "full.trace"
    proc = record(full, ARCH, "smp", "--buffer-events", "256", smp=4)
    assert proc.returncode == 0, proc.stderr
    data = full.read_bytes()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(data[: len(data) // 2])
    proc = memtap("report", str(cut), "--json", "-")
    assert proc.returncode == 0 and "truncated" in proc.stderr
    doc = json.loads(proc.stdout)
    rec = records(cut)
    assert 0 < doc["overview"]["records"] == len(rec) < len(records(full))
    assert doc["overview"]["truncated"] and "truncated" in doc["notes"][0]


def test_bad_invocations(traces: dict[str, Path], tmp_path: Path) -> None:
    counts = tmp_path / "counts.trace"
    assert record(counts, ARCH, "cover", "--counts").returncode == 0
    for args, message in (
            ((str(counts), "--json", "-"), "recorded with --counts"),
            ((str(traces["seq"]),), "give -o HTML, --json FILE, or both"),
            ((str(tmp_path / "missing.trace"), "--json", "-"), "no such file"),
            ((str(traces["seq"]), "--json", "-", "--cache", "nope"), "no cache preset 'nope'"),
            ((str(traces["seq"]), "--json", "-", "--range", "9:1"), "ends before it starts"),
            ((str(traces["seq"]), "-o", str(tmp_path / "no" / "dir.html")), "cannot write")):
        proc = memtap("report", *args)
        assert proc.returncode == 1 and proc.stderr.startswith("memtap: ") and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
