"""Bad input and crashes: a clear one-line error, a non-zero exit, and nothing already recorded lost."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from guestlib import guest, memtap, newer_qemu, qemu_command, record

import memtap as mt


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def fake_qemu(tmp_path: Path, version: str, plugins: bool) -> dict[str, str]:
    """A PATH whose qemu-system-riscv64 reports the given version and (no) plugin support."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "qemu-system-riscv64"
    helptext = "-plugin file=..." if plugins else "-machine ..."
    exe.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "QEMU emulator version {version}"; '
        f'else echo "{helptext}"; fi\n'
    )
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}


def test_no_qemu(tmp_path):
    out = tmp_path / "t.trace"
    proc = memtap("record", "-o", str(out), "--", "qemu-system-nonexistent", "-M", "virt")
    assert proc.returncode == 1
    assert "qemu-system-nonexistent not found" in one_line(proc.stderr)
    assert "apt-get install" in proc.stderr
    assert not out.exists()


def test_qemu_too_old(tmp_path):
    proc = memtap("record", "-o", str(tmp_path / "t"), "--", "qemu-system-riscv64",
                  env=fake_qemu(tmp_path, "8.2.2", plugins=True))
    assert proc.returncode == 1
    assert "is QEMU 8.2.2; memtap needs QEMU >= 10.0" in one_line(proc.stderr)


def test_qemu_without_plugins(tmp_path):
    proc = memtap("record", "-o", str(tmp_path / "t"), "--", "qemu-system-riscv64",
                  env=fake_qemu(tmp_path, "10.0.2", plugins=False))
    assert proc.returncode == 1
    assert "built without TCG plugin support" in one_line(proc.stderr)


def test_not_a_qemu(tmp_path):
    proc = memtap("record", "-o", str(tmp_path / "t"), "--", "true")
    assert proc.returncode == 1
    assert "not a QEMU system emulator" in one_line(proc.stderr)


def test_unknown_option_and_bad_values(tmp_path):
    for args in (["--bogus"], ["--events", "fetch,jump"], ["--max-insns", "-3"], ["--addr", "linear"]):
        proc = memtap("record", "-o", str(tmp_path / "t"), *args, "--", "qemu-system-riscv64")
        assert proc.returncode == 2, args
        line = one_line(proc.stderr)
        assert line.startswith("memtap") and args[-1].split(",")[-1].lstrip("-") in line


def test_no_command():
    proc = memtap("record", "-o", "x.trace")
    assert proc.returncode == 1
    assert "no QEMU command given" in one_line(proc.stderr)


def test_unwritable_output(tmp_path):
    target = tmp_path / "missing-dir" / "t.trace"
    proc = record(target, "riscv64", "seq")
    assert proc.returncode == 1
    assert f"cannot write trace {target}" in one_line(proc.stderr)


def test_qemu_exit_status_is_memtaps(tmp_path):
    proc = record(tmp_path / "t.trace", "riscv64", "fail")
    assert proc.returncode == 3
    assert "QEMU exited with status 3" in proc.stderr
    assert not mt.open(tmp_path / "t.trace").truncated


def test_file_size_limit_mid_run_keeps_whole_chunks(tmp_path):
    """Writes fail part-way (as on a full disk): the error is reported, the chunks before it stay readable."""
    trace_path = tmp_path / "t.trace"
    limit = 2 << 20

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    elf = guest("riscv64", "crc32")
    proc = subprocess.run(
        [sys.executable, "-m", "memtap.cli.main", "record", "-o", str(trace_path), "--buffer-events", "4096",
         "--zstd", "0", "--", *qemu_command("riscv64", elf)],
        capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr
    assert "cannot write trace" in proc.stderr and "File too large" in proc.stderr
    assert "is truncated" in proc.stderr
    trace = mt.open(trace_path)
    assert trace.truncated and trace.end is None
    recs = trace.records()
    assert len(recs) > 10_000
    assert np.array_equal(recs["pos"], np.arange(len(recs)))
    assert trace_path.stat().st_size <= limit


def start_recording(trace_path: Path, min_bytes: int, program: str = "crc32") -> tuple[subprocess.Popen, int]:
    """Starts `memtap record` on a long guest in the background; returns once the trace has grown past
    min_bytes, with the QEMU child's pid."""
    elf = guest("riscv64", program)
    proc = subprocess.Popen(
        [sys.executable, "-m", "memtap.cli.main", "record", "-o", str(trace_path), "--buffer-events", "4096",
         "--", *qemu_command("riscv64", elf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not trace_path.exists() or trace_path.stat().st_size < min_bytes):
        time.sleep(0.02)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1
    return proc, int(children[0])


def test_sigkill_mid_run_reads_up_to_last_chunk(tmp_path):
    trace_path = tmp_path / "t.trace"
    proc, qemu_pid = start_recording(trace_path, min_bytes=256 << 10)
    os.kill(qemu_pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL
    assert "QEMU was killed by SIGKILL" in stderr
    assert "is truncated" in stderr
    trace = mt.open(trace_path)
    assert trace.truncated
    recs = trace.records()
    assert len(recs) > 4096
    assert np.array_equal(recs["pos"], np.arange(len(recs)))
    # Consecutive but for the workload's START marker, which executes (icount counts it) but is not traced.
    steps = np.diff(recs["icount"][recs["kind"] == 0].astype(np.int64))
    assert np.all(steps >= 1) and np.count_nonzero(steps != 1) <= 1


def test_plugin_alone_overwrites_an_existing_file(tmp_path):
    """Used directly with -plugin (without memtap record), the plugin starts a fresh file of its own."""
    trace_path = tmp_path / "t.trace"
    trace_path.write_bytes(b"old contents " * 1000)
    from memtap.record.qemu import plugin_option, plugin_path

    cmd = qemu_command("riscv64", guest("riscv64", "seq"))
    cmd[1:1] = ["-plugin", plugin_option(plugin_path(), {"out": str(trace_path)})]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    trace = mt.open(trace_path)
    assert trace.complete and trace.meta == {}
    assert trace.end["records"]["store"] > 0


def test_doctor(tmp_path):
    proc = memtap("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    def listed(lines: list[str], name: str, series: str, features: str) -> bool:
        line = rf"{name} +{re.escape(series)}\.\d+ +plugins=yes  ok  {features}"
        return any(re.fullmatch(line, ln) for ln in lines)

    lines = proc.stdout.splitlines()
    assert listed(lines, "qemu-system-riscv64", "10.0", "exceptions=vector fetch-paddr=untranslated")
    assert listed(lines, "qemu-system-x86_64", "10.0", "exceptions=early-exit fetch-paddr=untranslated")
    # The QEMU 10.2 that scripts/build-newer-qemu.sh built is listed with what it adds.
    newer = Path(newer_qemu("riscv64"))
    proc = memtap("doctor", env={**os.environ, "MEMTAP_CACHE": str(newer.parents[2])})
    tail = proc.stdout.split("built by scripts/build-newer-qemu.sh, in ")[1].splitlines()
    assert tail[0] == f"{newer.parent} (name it on the command line):"
    assert listed(tail, "qemu-system-riscv64", "10.2", "exceptions=discontinuity fetch-paddr=translated")
    proc = memtap("doctor", "--json", env={**os.environ, "MEMTAP_CACHE": str(newer.parents[2])})
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["plugin_problem"] is None and Path(report["plugin"]).is_file()
    riscv = next(e for e in report["emulators"] if e["name"] == "qemu-system-riscv64")
    assert (riscv["plugins"], riscv["usable"], riscv["problem"], riscv["fix"]) == (True, True, None, None)
    assert re.match(r"QEMU emulator version 10\.0\.\d+ ", riscv["version"])
    assert riscv["features"] == "exceptions=vector fetch-paddr=untranslated"
    built = {e["name"]: e for e in report["newer_builds"]}
    assert built["qemu-system-riscv64"]["path"] == str(newer)
    assert built["qemu-system-riscv64"]["features"] == "exceptions=discontinuity fetch-paddr=translated"
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = memtap("doctor", env=env)
    assert proc.returncode == 1
    assert "qemu-system-riscv64 not found" in proc.stdout
    assert "apt-get install" in proc.stdout


def test_sigterm_to_qemu_still_gives_a_complete_trace(tmp_path):
    trace_path = tmp_path / "t.trace"
    proc, qemu_pid = start_recording(trace_path, min_bytes=64 << 10)
    os.kill(qemu_pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    trace = mt.open(trace_path)
    assert trace.complete, stderr
    recs = trace.records()
    assert sum(trace.end["records"].values()) == len(recs)
    assert np.array_equal(recs["pos"], np.arange(len(recs)))


def test_qemu_failing_at_start_leaves_no_file(tmp_path):
    """One rule whichever way QEMU fails before the guest made a record: no file, one line saying so, QEMU's
    status. (A missing kernel and too much memory fail after the plugin started; a bad machine before.)"""
    trace_path = tmp_path / "t.trace"
    base = ["qemu-system-riscv64", "-M", "virt", "-bios", "none", "-nographic"]
    for args in (["-M", "no-such-machine"], ["-kernel", str(tmp_path / "missing.elf")],
                 ["-m", "99999G", "-kernel", str(guest("riscv64", "seq"))]):
        proc = memtap("record", "-o", str(trace_path), "--", *base, *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert f"memtap: no trace written: QEMU stopped before the guest made a record ({trace_path} removed)" \
            in proc.stderr.splitlines(), (args, proc.stderr)
        assert not trace_path.exists(), args


def test_unwritable_header_leaves_no_file(tmp_path):
    """A write that fails after the file was created (a full disk; here a file size limit) leaves nothing."""
    trace_path = tmp_path / "t.trace"

    def tiny_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8, 8))

    proc = subprocess.run(
        [sys.executable, "-m", "memtap.cli.main", "record", "-o", str(trace_path), "--",
         *qemu_command("riscv64", guest("riscv64", "seq"))],
        capture_output=True, text=True, timeout=120, preexec_fn=tiny_files)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == f"memtap: cannot write trace {trace_path}: File too large"
    assert not trace_path.exists()


def qemu_gone(pid: int) -> None:
    """Waits until process pid has ended (it is not our child, so poll /proc)."""
    deadline = time.monotonic() + 120  # a failsafe only: QEMU's shutdown normally takes well under a second
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"QEMU (pid {pid}) outlived memtap"
        time.sleep(0.05)


def test_sigkill_of_memtap_takes_qemu_down(tmp_path):
    """However memtap dies, QEMU does not go on tracing into the file: it is told to shut down in order, so the
    trace is even complete."""
    trace_path = tmp_path / "t.trace"
    proc, qemu_pid = start_recording(trace_path, min_bytes=64 << 10, program="spin")
    proc.kill()
    proc.communicate(timeout=60)
    qemu_gone(qemu_pid)
    trace = mt.open(trace_path)
    assert trace.complete
    recs = trace.records(kinds="store")
    assert len(recs) > 0 and sum(trace.end["records"].values()) == len(trace.records())


def test_sigterm_to_memtap_finishes_the_trace(tmp_path):
    trace_path = tmp_path / "t.trace"
    proc, qemu_pid = start_recording(trace_path, min_bytes=64 << 10, program="spin")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    qemu_gone(qemu_pid)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    lines = stderr.splitlines()
    assert "memtap: stopped by SIGTERM: QEMU was asked to shut down" in lines
    assert any(ln.startswith(f"memtap: wrote {trace_path}: ") for ln in lines), stderr
    trace = mt.open(trace_path)
    assert trace.complete
    recs = trace.records()
    assert sum(trace.end["records"].values()) == len(recs)
    assert np.array_equal(recs["pos"], np.arange(len(recs)))


def test_hardware_accelerator_is_refused(tmp_path):
    for accel in (["-enable-kvm"], ["-accel", "kvm"], ["-M", "virt,accel=kvm:tcg"]):
        proc = memtap("record", "-o", str(tmp_path / "t"), "--", "qemu-system-riscv64", *accel)
        assert proc.returncode == 1
        assert "memtap traces TCG only" in one_line(proc.stderr)
    proc = memtap("record", "-o", str(tmp_path / "t"), "--", "qemu-system-riscv64", "-daemonize")
    assert proc.returncode == 1 and "remove -daemonize" in one_line(proc.stderr)
    from memtap.record.runner import hardware_accelerator

    assert hardware_accelerator(["qemu-system-riscv64", "-accel", "tcg,thread=single", "-M", "virt"]) is None


def test_relative_output_path_is_passed_absolute(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "memtap.cli.main", "record", "-o", "rel.trace", "--",
         *qemu_command("riscv64", guest("riscv64", "seq"))],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert mt.open(tmp_path / "rel.trace").complete
