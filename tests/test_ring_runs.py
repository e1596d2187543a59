"""Fetch runs in the live ring (--ring-fetches runs, the default): fewer ring records, and both clients' expansion
(memtap.ring_runs in Python, memtap_ring_expand in ring_client.h) gives exactly the file's records."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from guestlib import newer_qemu
from ringlib import Collector, Recording, ring_dump, ring_name

import memtap
from memtap import layout as L
from memtap import ring_runs

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
    # The ring itself carried every fetch inside a run of 1..32, so fewer records than the file has.
    fetches = int((expected["kind"] == L.KIND_FETCH).sum())
    raw = np.concatenate(py.raw)
    runs = raw[raw["kind"] == L.KIND_FETCH_RUN]
    assert 1 <= runs["size"].min() and runs["size"].max() <= L.RUN_MAX
    assert int(runs["size"].sum()) == fetches and len(runs) < fetches
    assert len(raw) == len(expected) - fetches + len(runs)
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
