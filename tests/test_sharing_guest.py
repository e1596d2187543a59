"""`memtap sharing` on the `share` guest (4 vCPUs: four counters in one line, false sharing; an atomic total in
another, true sharing): the classes, readers, writers, bytes and variables the guest's code fixes, and transfers
and movement equal to a brute-force count of mtrace's rule over the same records (sharing_oracle)."""

from __future__ import annotations

import json
from functools import cache

import pytest
from guestlib import ARCHES, guest, memtap, record, symbols
from sharing_oracle import Access, brute_force

import memtap as mt
from memtap.trace import layout as L

SHARE_N = 5000  # guest/programs/share.c: increments per CPU
NCPU = 4


@cache
def oracle_of(trace_path):
    recs = mt.open(trace_path).sorted(kinds=["load", "store"])
    recs = recs[(recs["flags"] & L.RF_IO) == 0]
    return brute_force([Access(int(r["vcpu"]), int(r["kind"]) == L.KIND_STORE, int(r["paddr"]), int(r["size"]),
                               int(r["vcpu"])) for r in recs])


@pytest.fixture(scope="module", params=ARCHES)
def share(request, tmp_path_factory):
    arch = request.param
    path = tmp_path_factory.mktemp(arch) / "share.trace"
    proc = record(path, arch, "share", "--events", "load,store", "--start-on-marker", smp=NCPU)
    assert proc.returncode == 0, proc.stderr
    elf = guest(arch, "share")
    r = memtap("sharing", str(path), "--elf", str(elf), "--json")
    assert r.returncode == 0, r.stderr
    return arch, path, elf, json.loads(r.stdout)


def test_false_and_true_sharing_lines(share):
    arch, path, elf, doc = share
    syms = symbols(elf)
    o = oracle_of(path)
    lines = {ln["address"]: ln for ln in doc["lines"]}
    counters, total = syms["counters"], syms["shared_total"]
    assert lines[counters] == {"address": counters, "kind": "false", "readers": [0, 1, 2, 3],
                               "writers": [0, 1, 2, 3], "threads": [], "transfers": o.transfers[counters // 64],
                               "symbols": ["counters+0x0"]}
    assert lines[total] == {"address": total, "kind": "true", "readers": [0, 1, 2, 3], "writers": [0, 1, 2, 3],
                            "threads": [], "transfers": o.transfers[total // 64], "symbols": ["shared_total+0x0"]}
    # contended lines do move: each vCPU's increments cannot all run before the others start
    assert o.transfers[counters // 64] >= 3 and o.transfers[total // 64] >= 3
    details = {d["address"]: d for d in doc["details"]}
    word = 8  # unsigned long on the 64-bit arches
    assert details[counters]["written"] == [{"sharer": k, "ranges": [[8 * k, 8 * k + 8]]} for k in range(NCPU)]
    assert details[total]["written"] == [{"sharer": k, "ranges": [[0, word]]} for k in range(NCPU)]
    rows = [{k: o[k] for k in ("offset", "sharer", "vcpus", "sizes", "reads", "writes", "symbol", "field")}
            for o in details[counters]["offsets"]]
    assert rows == [{"offset": 8 * k, "sharer": k, "vcpus": [k], "sizes": [8], "reads": SHARE_N,
                     "writes": SHARE_N, "symbol": f"counters+{8 * k:#x}", "field": f"counters.c[{k}]"}
                    for k in range(NCPU)]
    rows = [{k: o[k] for k in ("offset", "sharer", "reads", "writes", "symbol", "field")}
            for o in details[total]["offsets"]]
    assert rows == [{"offset": 0, "sharer": k, "reads": SHARE_N, "writes": SHARE_N, "symbol": "shared_total+0x0",
                     "field": "shared_total.value"} for k in range(NCPU)]
    for d in (details[counters], details[total]):  # the increments are in work(), inlined into main() on CPU 0
        assert {c["function"].split("+")[0] for o in d["offsets"] for c in o["code"]} <= {"work", "main"}
    (addr,) = [a for a in doc["shared_addresses"] if a["address"] == total]
    assert addr["by_sharer"] == [{"sharer": k, "accesses": 2 * SHARE_N} for k in range(NCPU)]


def test_every_line_and_figure_equals_brute_force(share):
    arch, path, elf, doc = share
    o = oracle_of(path)
    shared = {line for line, vs in o.vcpus.items() if len(vs) > 1}
    assert {ln["address"] // 64 for ln in doc["lines"]} == shared
    for ln in doc["lines"]:
        line = ln["address"] // 64
        assert (ln["transfers"], ln["readers"], ln["writers"], ln["kind"]) == \
            (o.transfers[line], sorted(o.readers[line]), sorted(o.writers[line]), o.kind(line))
    s = doc["summary"]
    assert s["transfers"] == sum(o.transfers.values())
    assert (s["lines"], s["lines_multi_vcpu"], s["shared_lines"]) == (len(o.vcpus), len(shared), len(shared))
    assert doc["movement"]["movement_records"] == o.movement_records
    assert doc["movement"]["transfer_records"] == o.transfer_records
    assert doc["movement"]["data_accesses"] == sum(len(seq) for seq in o.sequence.values())
    runs = sorted(r for line in shared for r in o.runs(line))
    il = doc["interleaving"]
    assert (il["mode"], il["option"], il["vcpus"]) == ("multi-threaded", None, NCPU)
    assert il["runs_per_line"]["runs"] == len(runs)
    assert il["runs_per_line"]["median"] == runs[(len(runs) - 1) // 2]
    assert il["runs_per_line"]["longest"] == runs[-1]


def test_text_report(share):
    arch, path, elf, doc = share
    r = memtap("sharing", str(path), "--elf", str(elf), "--top", "0")
    assert r.returncode == 0, r.stderr
    syms = symbols(elf)
    table = {}  # the "Shared cache lines" rows: #, address, kind, transfers, readers, writers, symbols
    for line in r.stdout.split("Shared cache lines, by transfers")[1].split("Line distribution")[0].splitlines()[2:]:
        if line.strip():
            cells = line.split()
            table[int(cells[1], 16)] = cells[2:]
    expected = {ln["address"]: [ln["kind"], str(ln["transfers"])] for ln in doc["lines"]}
    assert {a: cells[:2] for a, cells in table.items()} == expected
    assert table[syms["counters"]][2:] == ["0-3", "0-3", "counters+0x0"]
    assert table[syms["shared_total"]][2:] == ["0-3", "0-3", "shared_total+0x0"]
    assert "counters.c[3]" in r.stdout and "shared_total.value" in r.stdout
    assert "multi-threaded TCG" in r.stdout
