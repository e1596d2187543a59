"""Consumers that die, hang or lie cannot hold QEMU forever or make it lose records elsewhere; rings of another
format version are refused; names are unpredictable and objects owner-only."""

from __future__ import annotations

import mmap
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from guestlib import guest, qemu_command, record
from guestlib import memtap as run_memtap
from ringlib import Collector, Recording, fake_ring, file_digest, ring_name, wait_for_ring

import memtap
from memtap.errors import TraceError
from memtap.live import ring
from memtap.record import qemu
from memtap.trace import layout as L

__all__ = ["fake_ring"]  # fixture

# A consumer that takes one batch and then holds it forever (its heartbeat thread keeps running).
STUCK = """
import sys, time
from memtap.live import ring
c = ring.connect(sys.argv[1], timeout=30)
c.next_batch()
print("holding", flush=True)
time.sleep(600)
"""


def start_stuck(name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", STUCK, name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.fixture(scope="module")
def ptrchase_records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Record counts of a plain file recording of the guest (it is deterministic)."""
    trace = tmp_path_factory.mktemp("ref") / "ptrchase.trace"
    proc = record(trace, "riscv64", "ptrchase")
    assert proc.returncode == 0, proc.stderr
    return memtap.open(trace).end["records"]


@pytest.mark.parametrize("policy", ["continue", "stop"])
def test_killed_consumer_is_detached_within_a_second(tmp_path, policy, ptrchase_records):
    name, trace = ring_name(), tmp_path / "ptrchase.trace"
    rec = Recording(name, "riscv64", "ptrchase", "--ring-wait", "2", "--ring-on-death", policy, trace=trace)
    wait_for_ring(name)
    healthy = Collector(name, keep=False)
    stuck = start_stuck(name)
    with ring.open_ring(name) as r:  # lossless: the stuck consumer comes to hold all 8 buffers, the guest waits
        while sorted(c.behind for c in r.status().consumers)[-1] < 8:
            assert rec.proc.poll() is None, rec.stderr
            time.sleep(0.01)
        assert sorted(c.behind for c in r.status().consumers)[-1] == 8
    stuck.send_signal(signal.SIGKILL)
    stuck.wait()
    rec.wait_for_line(f"(pid {stuck.pid}) detached: its process is gone")
    assert rec.wait() == 0, rec.stderr
    healthy.finish()
    end = memtap.open(trace).end
    assert (healthy.digest.hexdigest(), healthy.count) == file_digest(trace)[:2]  # nothing lost for the others
    if policy == "continue":
        assert "recording goes on" in rec.stderr
        assert end["records"] == ptrchase_records  # the file lost nothing
    else:
        assert "tracing stopped (--ring-on-death stop)" in rec.stderr
        assert 0 < end["records"]["fetch"] < ptrchase_records["fetch"]


def test_silent_consumer_is_detached_after_its_heartbeat_stops(tmp_path):
    name, trace = ring_name(), tmp_path / "region.trace"
    rec = Recording(name, "riscv64", "region", "--ring-wait", "1", "--ring-buffer-size", "64",
                    "--ring-heartbeat-ms", "300", trace=trace)
    wait_for_ring(name)
    stuck = start_stuck(name)
    stuck.send_signal(signal.SIGSTOP)  # alive, but neither reading nor beating
    try:
        rec.wait_for_line(f"(pid {stuck.pid}) detached: its heartbeat stopped")
        assert rec.wait() == 0, rec.stderr
    finally:
        stuck.kill()
        stuck.wait()
    assert memtap.open(trace).complete


def hostile(name: str) -> None:
    """Claims slots with garbage: a pid that never beats, then an impossible read position; garbles the rest."""
    fd = os.open(ring.shm_path(name), os.O_RDWR)
    mm = mmap.mmap(fd, 0)
    slots = np.frombuffer(mm, L.RING_CONSUMER, L.RING_MAX_CONSUMERS, L.RING_HEADER.itemsize)
    slots[0]["pid"], slots[0]["state"] = 1, L.RING_SLOT_ATTACHING  # init: alive, never beats
    slots[1]["pid"], slots[1]["state"] = os.getpid(), L.RING_SLOT_ATTACHING
    slots[2]["state"] = 0xDEADBEEF
    slots[3]["pid"], slots[3]["state"] = 0, L.RING_SLOT_ATTACHING
    deadline = time.monotonic() + 10
    while slots[1]["state"] != L.RING_SLOT_ATTACHED:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    slots[1]["read_seq"] = 1 << 63
    h = np.frombuffer(mm, L.RING_HEADER, 1)
    h[0]["ctl_cmd"], h[0]["ctl_arg"] = 99, 1 << 60
    h[0]["ctl_seq"] += 1
    h[0]["write_seq"], h[0]["nbuffers"] = 1 << 62, 0  # the plugin keeps its own copies
    records_off = int(h[0]["records_offset"])
    mm[L.RING_HEADER.itemsize + 4 * L.RING_CONSUMER.itemsize: records_off] = os.urandom(
        records_off - L.RING_HEADER.itemsize - 4 * L.RING_CONSUMER.itemsize)
    del slots, h
    mm.close()
    os.close(fd)


def test_hostile_client_neither_crashes_nor_hangs_qemu(tmp_path):
    name, trace = ring_name(), tmp_path / "region.trace"
    rec = Recording(name, "riscv64", "region", "--ring-wait", "2", "--ring-buffer-size", "64", trace=trace)
    wait_for_ring(name)
    hostile(name)
    assert rec.wait(timeout=60) == 0, rec.stderr
    assert "(pid 1) detached: its heartbeat stopped" in rec.stderr
    assert f"(pid {os.getpid()}) detached: its slot holds values no client writes" in rec.stderr
    t = memtap.open(trace)
    assert t.complete and sum(t.end["records"].values()) == len(t.records())


def test_other_format_version_is_refused(fake_ring):
    with pytest.raises(TraceError, match="format version 7, but this memtap reads version 2"):
        ring.connect(fake_ring(version=7))
    proc = run_memtap("ctl", fake_ring(version=1), "status")
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("format version 1, but this memtap reads version 2: use the memtap "
                                        "that is recording")
    with pytest.raises(TraceError, match="inconsistent header"):
        ring.open_ring(fake_ring(records_offset=1 << 40))


def test_existing_name_is_not_reused(tmp_path, fake_ring):
    name = fake_ring()
    rec = Recording(name, "riscv64", "region", trace=tmp_path / "t.trace")
    assert rec.wait() == 1
    assert rec.stderr == (f"memtap: ring {name}: a shared-memory object of that name exists (another recording?); "
                          "choose another name")
    assert os.path.exists(ring.shm_path(name))  # left alone
    # The plugin itself refuses too (O_EXCL), when used without memtap record.
    lib = qemu.plugin_path()
    cmd = qemu.with_plugin(qemu_command("riscv64", guest("riscv64", "region")), lib, {"sink": "null", "ring": name})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"memtap: cannot create ring {name}: a shared-memory object of that name exists" in proc.stderr


def test_default_names_are_random_and_printed(tmp_path):
    names = []
    for i in range(2):
        proc = run_memtap("record", "-o", str(tmp_path / f"{i}.trace"), "--ring", "--",
                          *qemu_command("riscv64", guest("riscv64", "region")))
        assert proc.returncode == 0, proc.stderr
        names += re.findall(r"memtap: ring (memtap-[0-9a-f]{16}): 8 buffers", proc.stderr)
    assert len(set(names)) == 2
