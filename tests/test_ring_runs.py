"""Fetch runs in the live ring (--ring-fetches runs, the default): fewer ring records, and both clients' expansion
(memtap.ring_runs in Python, memtap_ring_expand in ring_client.h) gives exactly the file's records."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from guestlib import newer_qemu
from ringlib import Collector, Recording, ring_dump, ring_name

import memtap
from memtap.live import runs as ring_runs
from memtap.trace import layout as L

__all__ = ["ring_dump"]  # the fixture, imported for pytest


# Variable-length (x86), mixed 2- and 4-byte (Thumb-2) and fixed-length instructions.
@pytest.mark.parametrize("arch", ["x86_64", "i386", "arm-thumb", "aarch64"])
def test_runs_expand_to_the_files_records_in_python_and_c(tmp_path, arch, ring_dump):
    name, trace = ring_name(), tmp_path / "region.trace"
    dump = subprocess.Popen([ring_dump, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rec = Recording(name, arch, "region", "--start-on-marker", "--ring-wait", "2", trace=trace)
    py = Collector(name)
    assert rec.wait() == 0, rec.stderr
    out, err = dump.communicate(timeout=120)
    assert dump.returncode == 0, err
    expected = memtap.open(trace).records()
    py.finish()
    assert py.records().tobytes() == expected.tobytes()
    assert out == expected.tobytes()
    # The ring itself carried every fetch inside a run of 1..32 or a load or store that ends 1..16 of them, so
    # fewer records than the file has; each access record that follows its own fetches carried them.
    fetches = int((expected["kind"] == L.KIND_FETCH).sum())
    raw = np.concatenate(py.raw)
    runs = raw[raw["kind"] == L.KIND_FETCH_RUN]
    fused = raw[np.isin(raw["kind"], [L.KIND_RUN_LOAD, L.KIND_RUN_STORE])]
    assert 1 <= runs["size"].min() and runs["size"].max() <= L.RUN_MAX
    assert len(fused) and 1 <= fused["fetches"].min() and fused["fetches"].max() <= L.FUSED_MAX
    assert int(runs["size"].sum()) + int(fused["fetches"].sum()) == fetches and len(runs) < fetches
    assert len(raw) == len(expected) - fetches + len(runs)
    plain = raw[np.isin(raw["kind"], [L.KIND_LOAD, L.KIND_STORE])]
    assert not (plain["fetches"].any() or plain["flags"] & L.RF_RUN_PADDR).any()
    assert py.consumer.flags & L.RING_F_FETCH_RUNS


def test_records_form_carries_one_record_per_fetch(tmp_path):
    name, trace = ring_name(), tmp_path / "region.trace"
    rec = Recording(name, "x86_64", "region", "--start-on-marker", "--ring-wait", "1", "--ring-fetches",
                    "records", trace=trace)
    c = Collector(name)
    assert rec.wait() == 0, rec.stderr
    c.finish()
    assert not c.consumer.flags & L.RING_F_FETCH_RUNS
    assert c.raw_counts == c.counts  # nothing to expand
    assert c.records().tobytes() == memtap.open(trace).records().tobytes()


def test_expand_reads_every_size_field():
    """A synthetic 32-instruction run (sizes 1..15 and 16 of them in value_hi) and one without a physical address."""
    sizes = [(k % 15) + 1 for k in range(32)]
    run = np.zeros(3, L.RECORD)
    run[0] = (100, 7, 0x1000, 0x8000, 0x1000, 0, 2, L.KIND_FETCH_RUN, 32, 1, L.RF_PADDR, 0, 0)
    run[0]["value"] = sum(s << (4 * k) for k, s in enumerate(sizes[:16]))
    run[0]["value_hi"] = sum(s << (4 * k) for k, s in enumerate(sizes[16:]))
    run[1] = (132, 39, 0x2000, 0x1234, 0x2000, 0x55, 2, L.KIND_STORE, 4, 1, L.RF_PADDR, 0, 0)
    run[2] = (133, 40, 0x3000, 0, 0x3000, 2 | 4 << 4, 2, L.KIND_FETCH_RUN, 2, 0, 0, 0, 0)
    got = ring_runs.expand(run)
    assert len(got) == ring_runs.accesses(run) == 35
    starts = np.cumsum([0] + sizes[:-1])
    assert got["vaddr"][:32].tolist() == got["pc"][:32].tolist() == [0x1000 + int(s) for s in starts]
    assert got["paddr"][:32].tolist() == [0x8000 + int(s) for s in starts]
    assert got["size"][:32].tolist() == sizes
    assert got["pos"][:32].tolist() == list(range(100, 132)) and got["icount"][:32].tolist() == list(range(7, 39))
    assert set(got["kind"][:32].tolist()) == {L.KIND_FETCH} and not got["value"][:32].any()
    assert got[32].tobytes() == run[1].tobytes()
    tail = got[33:]
    assert (tail["vaddr"].tolist(), tail["paddr"].tolist(), tail["size"].tolist(), tail["pos"].tolist()) == (
        [0x3000, 0x3002], [0, 0], [2, 4], [133, 134])


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_translated_fetch_addresses_reach_the_ring(tmp_path, arch):
    """QEMU >= 10.2 translates fetch addresses with the MMU on: the ring's runs carry them like the file (a run
    never spans two mappings), in both clients' expansion."""
    name, trace = ring_name(), tmp_path / "mmu.trace"
    rec = Recording(name, arch, "mmu", "--start-on-marker", "--ring-wait", "1", trace=trace, qemu=newer_qemu(arch))
    c = Collector(name)
    assert rec.wait() == 0, rec.stderr
    c.finish()
    expected = memtap.open(trace).records()
    fetches = expected[expected["kind"] == L.KIND_FETCH]
    assert (fetches["flags"] & L.RF_PADDR).all() and (fetches["paddr"] != fetches["vaddr"]).any()
    assert c.records().tobytes() == expected.tobytes()


def test_expand_splits_a_run_load_or_store_into_its_fetches_and_its_access():
    """Synthetic run loads/stores (fetches ending at the access's pc, with and without the first fetch's physical
    address) expand to the fetch records and the plain access record the file has; the C client's expansion is
    checked against the file on real guests above."""
    sizes = [2, 4, 4]  # the load's own instruction is the last
    rec = np.zeros(3, L.RECORD)
    rec[0] = (50, 20, 0x9000, 0x19000, 0x1006, sum(s << (4 * k) for k, s in enumerate(sizes)), 1,
              L.KIND_RUN_LOAD, 8, 1, L.RF_PADDR | L.RF_SIGNED | L.RF_RUN_PADDR, 3, 0x81000)
    rec[1] = (51, 21, 0x100e, 0, 0x100e, 0, 1, L.KIND_FETCH, 2, 1, 0, 0, 0)
    rec[2] = (54, 23, 0x9008, 0, 0x1016, 4 | 2 << 4, 1, L.KIND_RUN_STORE, 4, 1, L.RF_IO, 2, 0)
    got = ring_runs.expand(rec)
    assert len(got) == ring_runs.accesses(rec) == 8
    fetch = [(int(r["pos"]), int(r["icount"]), int(r["vaddr"]), int(r["pc"]), int(r["paddr"]), int(r["size"]),
              int(r["flags"])) for r in got[got["kind"] == L.KIND_FETCH]]
    assert fetch == [
        (47, 18, 0x1000, 0x1000, 0x81000, 2, L.RF_PADDR), (48, 19, 0x1002, 0x1002, 0x81002, 4, L.RF_PADDR),
        (49, 20, 0x1006, 0x1006, 0x81006, 4, L.RF_PADDR),
        (51, 21, 0x100e, 0x100e, 0, 2, 0),  # the plain fetch, as it was
        (52, 22, 0x1012, 0x1012, 0, 4, 0), (53, 23, 0x1016, 0x1016, 0, 2, 0),
    ]
    load, store = got[3], got[7]
    assert got["kind"].tolist() == [L.KIND_FETCH] * 3 + [L.KIND_LOAD] + [L.KIND_FETCH] * 3 + [L.KIND_STORE]
    assert (int(load["pos"]), int(load["icount"]), int(load["vaddr"]), int(load["paddr"]), int(load["pc"])) == (
        50, 20, 0x9000, 0x19000, 0x1006)
    assert (int(load["flags"]), int(load["size"]), int(load["value"]), int(load["fetches"])) == (
        L.RF_PADDR | L.RF_SIGNED, 8, 0, 0)
    assert (int(store["pos"]), int(store["vaddr"]), int(store["flags"]), int(store["value_hi"])) == (
        54, 0x9008, L.RF_IO, 0)
