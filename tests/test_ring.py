"""The live ring carries exactly the file's records: with a file at once, to several consumers, to a consumer that
attaches late, to the C client, and, in lossy mode, everything but the dropped buffers, which are counted exactly.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import threading
import time

import numpy as np
import pytest
from guestlib import ARCHES, guest, record, symbols
from ringlib import Collector, Recording, fake_ring, file_digest, ring_count, ring_name, wait_for_ring
from test_record_completeness import expected as region_accesses

import memtap
from memtap.live import ring
from memtap.live.ring import shm_path
from memtap.trace.layout import (
    KIND_FETCH,
    KIND_FETCH_RUN,
    KIND_LOAD,
    KIND_NAMES,
    KIND_RUN_LOAD,
    KIND_RUN_STORE,
    KIND_STORE,
)

__all__ = ["fake_ring", "ring_count"]  # fixtures


@pytest.mark.parametrize("arch", ARCHES)
def test_two_consumers_each_get_the_files_records(tmp_path, arch):
    name, trace = ring_name(), tmp_path / "region.trace"
    rec = Recording(name, arch, "region", "--start-on-marker", "--ring-wait", "2", "--ring-buffer-size", "1000",
                    trace=trace)
    a, b = Collector(name), Collector(name)
    assert rec.wait() == 0, rec.stderr
    expected = memtap.open(trace).records()
    region = symbols(guest(arch, "region"))["mt_region"]
    got = a.finish().records()
    inside = got[(got["vaddr"] >= region) & (got["vaddr"] < region + 4096) & (got["kind"] != KIND_FETCH)]
    columns = zip(inside["kind"], inside["vaddr"], inside["size"], strict=True)
    assert [(KIND_NAMES[k], int(v), int(s)) for k, v, s in columns] == region_accesses(region)
    for c in (a.finish(), b.finish()):
        got = c.records()
        assert got.tobytes() == expected.tobytes()
        assert c.consumer.joined_at == (0, 0, 0)
        assert c.lost == 0 and c.consumer.complete is True
        # Buffers of 1000 ring records each; stream indexes count records as the file does (runs expanded).
        assert c.raw_counts[:-1] == [1000] * (len(c.raw_counts) - 1) and sum(c.raw_counts) < len(expected)
        assert c.firsts == np.cumsum([0] + [len(x) for x in c.batches[:-1]]).tolist()
    assert memtap.open(trace).end["dropped"] == 0
    assert f"memtap: ring {name}: 8 buffers of 1000 records, lossless" in rec.stderr


def test_smp_guest_ring_matches_file_order(tmp_path):
    name, trace = ring_name(), tmp_path / "smp.trace"
    rec = Recording(name, "riscv64", "smp", "--start-on-marker", "--ring-wait", "1", trace=trace, smp=4)
    c = Collector(name)
    assert rec.wait() == 0, rec.stderr
    got, expected = c.finish().records(), memtap.open(trace).records()
    assert got.tobytes() == expected.tobytes()
    region = symbols(guest("riscv64", "smp"))["mt_smp_region"]
    for k in range(4):  # CPU k stores 256 u32 values into its own 1 KiB of the region
        mine = got[got["vcpu"] == k]
        inside = (mine["kind"] == KIND_STORE) & (mine["vaddr"] >= region + k * 1024) & \
            (mine["vaddr"] < region + (k + 1) * 1024)
        assert mine["vaddr"][inside].tolist() == [region + k * 1024 + 4 * i for i in range(256)]


def test_ring_alone_writes_no_file_and_matches_a_file_run(tmp_path):
    name = ring_name()
    rec = Recording(name, "riscv64", "region", "--ring-wait", "1")
    c = Collector(name)
    assert rec.wait() == 0, rec.stderr
    assert "wrote" not in rec.stderr
    assert list(tmp_path.iterdir()) == []
    proc = record(tmp_path / "file.trace", "riscv64", "region")
    assert proc.returncode == 0, proc.stderr
    assert c.finish().records().tobytes() == memtap.open(tmp_path / "file.trace").records().tobytes()


@pytest.mark.parametrize("with_file", [True, False])
def test_late_consumer_sees_the_files_suffix_from_where_it_joined(tmp_path, with_file):
    """With a file, its records from the stream index the late consumer joined at; without one (the plugin only
    counts records while nobody reads), the early consumer's records from that index."""
    name, trace = ring_name(), tmp_path / "demo.trace"
    rec = Recording(name, "riscv64", "demo", "--ring-wait", "1", "--ring-buffer-size", "8192",
                    trace=trace if with_file else None)
    joined = threading.Event()
    late: list[Collector] = []

    def after(n: int) -> None:
        if n == 20:
            late.append(Collector(name, keep=False))
            joined.set()

    early = Collector(name, keep=not with_file, delay=0.01, on_batch=after)
    assert joined.wait(60)
    assert rec.wait() == 0, rec.stderr
    early.finish()
    b = late[0].finish()
    seq, first_record, first_pos = b.consumer.joined_at
    assert seq >= 20 and first_record == sum(early.counts[:seq])  # no drops: the buffers before it, expanded
    if with_file:
        digest, n, pos = file_digest(trace, skip=first_record)
        assert (b.digest.hexdigest(), b.count, first_pos) == (digest, n, pos)
        assert (early.digest.hexdigest(), early.count) == file_digest(trace)[:2]
    else:
        suffix = early.records()[first_record:]
        assert (b.digest.hexdigest(), b.count, first_pos) == (
            hashlib.sha256(suffix.tobytes()).hexdigest(), len(suffix), int(suffix["pos"][0]))


def test_first_consumer_joining_late_gets_the_right_stream_index(tmp_path):
    """Before anyone attaches the plugin only counts records; the count must match what it would have expanded."""
    name, trace = ring_name(), tmp_path / "ptrchase.trace"
    rec = Recording(name, "riscv64", "ptrchase", trace=trace)
    wait_for_ring(name)
    with ring.open_ring(name) as r:  # the guest has made records before anyone attaches
        while sum(r.status().records.values()) == 0:
            assert rec.proc.poll() is None, rec.stderr
            time.sleep(0.01)
    c = Collector(name, keep=False)
    assert rec.wait() == 0, rec.stderr
    c.finish()
    seq, first_record, first_pos = c.consumer.joined_at
    assert first_record > 0
    assert (c.digest.hexdigest(), c.count, first_pos) == file_digest(trace, skip=first_record)


def test_lossy_mode_drops_whole_buffers_and_counts_every_record(tmp_path):
    name, trace = ring_name(), tmp_path / "region.trace"
    rec = Recording(name, "riscv64", "region", "--ring-lossy", "--ring-wait", "1", "--ring-buffers", "2",
                    "--ring-buffer-size", "256", trace=trace)
    c = Collector(name, delay=0.02)
    assert rec.wait() == 0, rec.stderr
    c.finish()
    expected = memtap.open(trace).records()
    lost = c.lost
    assert lost > 0
    assert c.count + lost == len(expected)
    assert memtap.open(trace).end["dropped"] == lost
    # What arrived is exactly the file's records at that place.
    for first, batch in zip(c.firsts, c.batches, strict=True):
        assert batch.tobytes() == expected[first: first + len(batch)].tobytes()
    assert f"memtap: ring {name}: {lost} records dropped in" in rec.stderr


def test_c_client_counts_equal_the_files(tmp_path, ring_count):
    name, trace = ring_name(), tmp_path / "demo.trace"
    client = subprocess.Popen([ring_count, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec = Recording(name, "x86_64", "demo", "--ring-wait", "1", trace=trace)
    assert rec.wait() == 0, rec.stderr
    out, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    got = dict(line.split() for line in out.splitlines())
    end = memtap.open(trace).end["records"]
    assert {k: int(got[k]) for k in end} == end
    assert (got["lost"], got["joined_seq"], got["first_pos"]) == ("0", "0", "0")


def test_c_client_refuses_another_format_version(tmp_path, ring_count, fake_ring):
    proc = subprocess.run([ring_count, fake_ring(version=1)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "ring_count: memtap ring: format version 1, this client reads version 2"


def test_ring_of_a_running_recording_is_owner_only(tmp_path):
    name = ring_name()
    rec = Recording(name, "riscv64", "region", "--ring-wait", "1")
    wait_for_ring(name)
    assert stat.S_IMODE(os.stat(shm_path(name)).st_mode) == 0o600
    c = Collector(name, keep=False)
    assert rec.wait() == 0, rec.stderr
    c.finish()
    assert not os.path.exists(shm_path(name))  # removed at the end
    assert c.count == int(c.kinds.sum())
    assert c.kinds[KIND_STORE] >= 768 and c.kinds[KIND_LOAD] >= 1536  # at least the program's own accesses


@pytest.mark.parametrize(("program", "options"), [("cmo", ()), ("region", ("--values",))])
def test_ring_carries_cmo_records_and_values_like_the_file(tmp_path, program, options):
    name, trace = ring_name(), tmp_path / "t.trace"
    rec = Recording(name, "riscv64", program, "--ring-wait", "1", *options, trace=trace)
    c = Collector(name)
    assert rec.wait() == 0, rec.stderr
    got, expected = c.finish().records(), memtap.open(trace).records()
    assert got.tobytes() == expected.tobytes()
    if program == "cmo":
        assert int((got["kind"] == KIND_NAMES.index("cmo")).sum()) == memtap.open(trace).end["records"]["cmo"] > 0
    else:  # value and value_hi are the accesses' own: no load or store carries fetches
        assert got["value"][got["kind"] == KIND_STORE].any()
        raw = np.concatenate(c.raw)["kind"]
        assert not np.isin(raw, [KIND_RUN_LOAD, KIND_RUN_STORE]).any() and (raw == KIND_FETCH_RUN).any()
