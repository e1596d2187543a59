"""Run-time control through the ring (memtap ctl, and the Python client) and the live view (memtap top)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from guestlib import memtap as run_memtap
from ringlib import Collector, Recording, file_digest, ring_name, wait_for_ring

import memtap
from memtap.live import ring
from memtap.trace.layout import KIND_FETCH, KIND_LOAD, KIND_MARKER, KIND_NAMES, KIND_STORE


def test_ctl_stop_start_mark_change_the_trace(tmp_path):
    name, trace = ring_name(), tmp_path / "ptrchase.trace"
    # A slow consumer paces the guest (small event buffers keep it close behind), so the commands land while it
    # runs; then it speeds up to let the guest finish.
    rec = Recording(name, "riscv64", "ptrchase", "--start-on-marker", "--ring-wait", "1", "--ring-buffer-size",
                    "4096", "--buffers", "2", "--buffer-events", "4096", trace=trace)
    c = Collector(name, keep=False, delay=0.01)
    while c.count < 100_000:
        assert c.is_alive(), c.error
    status = run_memtap("ctl", name, "status", "--json")
    assert status.returncode == 0, status.stderr
    s = json.loads(status.stdout)
    assert s["tracing"] == ["fetch", "load", "store"] and s["running"] and not s["lossy"]
    assert [x["pid"] for x in s["consumers"]] == [os.getpid()]
    assert s["records"]["fetch"] >= 100_000 and s["dropped"] == 0
    with ring.open_ring(name) as r:
        r.stop()
        assert r.status().tracing == ()
        off = run_memtap("ctl", name, "mark", "5")
        assert off.returncode == 1
        assert off.stderr.strip() == f"memtap: ring {name}: tracing is off: a marker would not be recorded"
        # The guest itself says when it has run untraced: its instruction count, which the plugin publishes,
        # moves on while tracing is off (on a loaded machine that can take a while; no wall-clock bound).
        stopped_at = r.status().icount
        while r.status().icount <= stopped_at:
            assert rec.proc.poll() is None, "the guest ended while tracing was off"
            time.sleep(0.01)
        started = run_memtap("ctl", name, "start")
        assert (started.returncode, started.stderr) == (0, f"memtap: ring {name}: start done\n")
        r.mark(7)
    assert run_memtap("ctl", name, "mark", "0x10").returncode == 0
    text = run_memtap("ctl", name, "status").stdout
    assert "tracing     fetch, load, store\n" in text and f"pid {os.getpid()}" in text
    stop = run_memtap("ctl", name, "stop")  # the rest of the run is not traced: it finishes quickly
    assert (stop.returncode, stop.stderr) == (0, f"memtap: ring {name}: stop done\n")
    c.delay = 0
    assert rec.wait() == 0, rec.stderr
    c.finish()
    assert (c.digest.hexdigest(), c.count) == file_digest(trace)[:2]

    t = memtap.open(trace)
    recs = t.records()
    marks = np.flatnonzero(recs["kind"] == KIND_MARKER)
    assert recs["value"][marks].tolist() == [7, 0x10]
    for m in marks:  # placed at a block entry: the next record is that block's first fetch
        nxt = recs[m + 1]
        assert (nxt["kind"], nxt["pc"], nxt["icount"]) == (KIND_FETCH, recs[m]["pc"], recs[m]["icount"] + 1)
    fetch = recs[recs["kind"] == KIND_FETCH]
    steps = np.diff(fetch["icount"].astype(np.int64))
    assert len(steps[steps != 1]) == 1 and steps.max() > 1  # the one stop..start window
    assert t.end["executed_insns"] > int(fetch["icount"][-1])  # and nothing after the last stop
    assert t.end["records"]["marker"] == 2


def test_ctl_errors_are_one_line(tmp_path):
    proc = run_memtap("ctl", "memtap-no-such-ring", "status")
    assert (proc.returncode, proc.stderr.strip()) == (
        1, "memtap: no ring named memtap-no-such-ring (is `memtap record --ring memtap-no-such-ring` running?)")
    proc = run_memtap("ctl", "bad/name", "stop")
    assert proc.returncode == 1 and "bad ring name" in proc.stderr
    proc = run_memtap("ctl", "x", "mark")
    assert (proc.returncode, proc.stderr.strip()) == (1, "memtap: mark needs a value: memtap ctl NAME mark N")
    proc = run_memtap("ctl", "x", "mark", "1e3")
    assert (proc.returncode, proc.stderr.strip()) == (1, "memtap: marker value '1e3' is not an integer")


def test_top_final_frame_matches_the_file(tmp_path):
    name, trace = ring_name(), tmp_path / "demo.trace"
    top = subprocess.Popen([sys.executable, "-m", "memtap.cli.main", "top", name, "--interval", "0.2",
                            "--pages", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "COLUMNS": "120"})
    rec = Recording(name, "riscv64", "demo", "--ring-wait", "1", trace=trace)
    assert rec.wait() == 0, rec.stderr
    out, err = top.communicate(timeout=60)
    assert top.returncode == 0, err
    last = out.split("memtap top ")[-1]
    recs = memtap.open(trace).records()
    assert last.startswith(f"{name}: {len(recs)} records (recording ended, joined at pos 0), 0 lost")
    rows = {line.split()[0]: line.split()[1:] for line in last.splitlines() if line.strip()}
    for k, kind in enumerate(KIND_NAMES):
        assert int(rows[kind][0]) == int((recs["kind"] == k).sum())
    assert int(rows["0"][0]) == len(recs)
    data = recs[(recs["kind"] == KIND_LOAD) | (recs["kind"] == KIND_STORE)]
    pages, counts = np.unique(data["vaddr"] >> np.uint64(12), return_counts=True)
    order = np.lexsort((pages, -counts))[:3]
    shown = [line.split()[:2] for line in last.splitlines() if line.strip().startswith("0x")]
    assert shown == [[f"0x{int(pages[i]) << 12:x}", str(int(counts[i]))] for i in order]


def test_top_page_size_groups_pages_that_large(tmp_path):
    name, trace = ring_name(), tmp_path / "region.trace"
    top = subprocess.Popen([sys.executable, "-m", "memtap.cli.main", "top", name, "--interval", "0.2",
                            "--pages", "2", "--page-size", "0x10000"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"})
    rec = Recording(name, "riscv64", "region", "--ring-wait", "1", trace=trace)
    assert rec.wait() == 0, rec.stderr
    out, err = top.communicate(timeout=60)
    assert top.returncode == 0, err
    last = out.split("memtap top ")[-1]
    recs = memtap.open(trace).records()
    data = recs[(recs["kind"] == KIND_LOAD) | (recs["kind"] == KIND_STORE)]
    pages, counts = np.unique(data["vaddr"] >> np.uint64(16), return_counts=True)
    order = np.lexsort((pages, -counts))[:2]
    shown = [line.split()[:2] for line in last.splitlines() if line.strip().startswith("0x")]
    assert shown == [[f"0x{int(pages[i]) << 16:x}", str(int(counts[i]))] for i in order]
    bad = run_memtap("top", name, "--page-size", "3000")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_top_iterations_prints_that_many_frames(tmp_path):
    name = ring_name()
    rec = Recording(name, "riscv64", "demo", "--ring-wait", "1")
    wait_for_ring(name)
    proc = run_memtap("top", name, "--iterations", "2", "--interval", "0.05")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(f"memtap top {name}: ") == 2
    assert rec.wait() == 0, rec.stderr  # top left; the recording went on without it
    assert "detached" not in rec.stderr
