"""Linux guests (guest/linux/) on x86_64, AArch64 and RISC-V 64 with 4 vCPUs: each boots the kernel that
scripts/build-linux.sh built, runs one of the project's static programs from the initramfs and powers off, under
plain QEMU and under `memtap record`. The expected records come from the programs' ELF files (symbols of the
labelled instructions and variables) and from vmlinux, never from the trace under test."""

from __future__ import annotations

import os
import select
import subprocess
import time

import numpy as np
import pytest
from guestlib import instructions, memtap, newer_qemu, symbols
from linuxlib import (
    LINUX_ARCHES,
    TIMEOUT,
    boot,
    busybox,
    command,
    exit_status,
    kernel,
    program,
    record,
    result_line,
    symbol_extent,
    symbols_only,
)

import memtap as memtap_api
from memtap.layout import PRIV_USER, RF_ATOMIC, RF_INTERRUPT, RF_PADDR

FALSESHARE_N = 100000   # falseshare.c's default iteration count per thread
SYSHEAVY_N = 10000      # sysheavy.c's default number of getppid calls


def user_stores(trace, lo: int, hi: int) -> np.ndarray:
    recs = trace.sorted(kinds=["store"], addr_range=(lo, hi))
    return recs[recs["priv"] == PRIV_USER]


@pytest.mark.parametrize("newer", [False, True], ids=["qemu", "newer-qemu"])
@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_boots_runs_and_powers_off(arch, newer):
    """Plain QEMU (Debian's, and the QEMU >= 10.2 scripts/build-newer-qemu.sh built): the program's line, init's
    exit line, and QEMU's exit status 0 from the power-off."""
    proc = boot(arch, "syscalls", qemu=newer_qemu(arch) if newer else None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert result_line(proc.stdout, "syscalls") == (
        "syscalls: pipe2=0 fds=3,4 write=6 read=6 data=memtap openat=5 close=0 missing=-2 clock_gettime=0 "
        "nanosleep=0 close=0,0")


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_failing_program_status_on_console(arch):
    """A program's non-zero status reaches the console (QEMU still exits 0: init powered off)."""
    proc = boot(arch, "falseshare", "-1")   # a negative count: no work, counters 0, exit status 1
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert exit_status(proc.stdout, "falseshare") == 1
    assert "falseshare: counters=0,0,0,0 total=0" in proc.stdout


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_falseshare_stores(tmp_path, arch):
    """4 threads on 4 vCPUs: exactly N stores per counter of the shared line, each from one vCPU, at the
    increment's PC, in user mode, to one physical line; and 4N atomic adds to the total's own line."""
    elf = program(arch, "falseshare")
    sym = symbols(elf)
    trace_path = tmp_path / "falseshare.trace"
    proc = record(trace_path, arch, "falseshare", "--start-on-marker", "--events", "store")
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = FALSESHARE_N
    assert result_line(proc.stdout, "falseshare") == f"falseshare: counters={n},{n},{n},{n} total={4 * n}"
    trace = memtap_api.open(trace_path)

    line = user_stores(trace, sym["counters"], sym["counters"] + 64)
    assert len(line) == 4 * n
    assert set(line["pc"].tolist()) == {sym["falseshare_inc"]}
    assert set(line["size"].tolist()) == {8}
    assert np.all(line["flags"] & RF_PADDR)
    assert len(set((line["paddr"] >> 6).tolist())) == 1
    assert np.array_equal(line["paddr"] & 63, line["vaddr"] & 63)
    writers = []
    for k in range(4):
        mine = line[line["vaddr"] == sym["counters"] + 8 * k]
        assert len(mine) == n, f"counter {k}"
        vcpus = set(mine["vcpu"].tolist())
        assert len(vcpus) == 1, f"counter {k} written by vCPUs {vcpus}"
        writers += vcpus
    assert sorted(writers) == [0, 1, 2, 3]
    # In global order the line's writer changes (false sharing): every vCPU's stores interleave with others'.
    assert np.count_nonzero(np.diff(line["vcpu"].astype(np.int16))) >= 3

    total = user_stores(trace, sym["shared_total"], sym["shared_total"] + 64)
    assert len(total) == 4 * n
    assert set(total["vaddr"].tolist()) == {sym["shared_total"]}
    assert set(total["pc"].tolist()) == {sym["falseshare_add"]}
    assert np.all(total["flags"] & RF_ATOMIC)
    assert sorted(np.unique(total["vcpu"], return_counts=True)[1].tolist()) == [n] * 4


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_twoproc_same_vaddr_two_physical_pages(tmp_path, arch):
    """Parent and child store at the same virtual addresses from the same instructions, into two physical pages."""
    elf = program(arch, "twoproc")
    sym = symbols(elf)
    page = sym["twoproc_page"]
    assert page % 4096 == 0
    trace_path = tmp_path / "twoproc.trace"
    proc = record(trace_path, arch, "twoproc", "--start-on-marker", "--events", "store", "--values")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result_line(proc.stdout, "twoproc") == \
        "twoproc: parent=0x74776f7000000001,0x74776f7000000002 child=ok"
    stores = user_stores(memtap_api.open(trace_path), page, page + 4096)
    assert len(stores) == 4
    frames = {}
    for s in stores:
        frames.setdefault(int(s["paddr"]) >> 12, []).append(
            (int(s["vaddr"]) - page, int(s["pc"]), int(s["value"])))
    assert len(frames) == 2
    expected = {who: [(0, sym["twoproc_store0"], 0x74776F7000000001 | who << 16),
                      (8, sym["twoproc_store1"], 0x74776F7000000002 | who << 16)] for who in (0, 1)}
    assert sorted(frames.values()) == [expected[0], expected[1]]
    assert np.all(stores["paddr"] & 0xFFF == stores["vaddr"] & 0xFFF)


# What a system call from user mode executes first, and the prefix of the kernel's handler functions.
SYSCALL_ENTRY = {"x86_64": ("entry_SYSCALL_64", 0), "aarch64": ("vectors", 0x400), "riscv64": ("handle_exception", 0)}
HANDLER_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_", "riscv64": "__riscv_sys_"}
SYSCALLS = ["getpid", "pipe2", "write", "read", "openat", "close", "openat", "clock_gettime", "nanosleep", "close",
            "close"]


def vmlinux_symbols(arch: str) -> dict[str, int]:
    return symbols(kernel(arch).vmlinux)


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_syscalls_enter_the_kernel_in_order(tmp_path, arch):
    """Each of the eleven system calls is one user-mode fetch of raw_syscall_insn, followed on the same vCPU by the
    arch's system-call entry and, before the next user-mode fetch, by the entry of that call's handler."""
    insn = symbols(program(arch, "syscalls"))["raw_syscall_insn"]
    ksym = vmlinux_symbols(arch)
    entry = ksym[SYSCALL_ENTRY[arch][0]] + SYSCALL_ENTRY[arch][1]
    trace_path = tmp_path / "syscalls.trace"
    proc = record(trace_path, arch, "syscalls", "--start-on-marker", "--events", "fetch")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result_line(proc.stdout, "syscalls").startswith("syscalls: pipe2=0 fds=3,4 write=6 read=6")
    fetches = memtap_api.open(trace_path).sorted(kinds=["fetch"])
    calls = fetches[(fetches["pc"] == insn) & (fetches["priv"] == PRIV_USER)]
    assert len(calls) == len(SYSCALLS)
    vcpus = set(calls["vcpu"].tolist())
    assert len(vcpus) == 1, vcpus
    mine = fetches[fetches["vcpu"] == vcpus.pop()]
    user = np.flatnonzero(mine["priv"] == PRIV_USER)
    for i, at in enumerate(np.flatnonzero((mine["pc"] == insn) & (mine["priv"] == PRIV_USER))):
        back = user[user > at][0]
        kernel_pcs = set(mine["pc"][at + 1 : back].tolist())
        assert mine["pc"][at + 1] == entry, f"call {i}"
        assert not np.any(mine["priv"][at + 1 : back] == PRIV_USER)
        assert ksym[HANDLER_PREFIX[arch] + SYSCALLS[i]] in kernel_pcs, f"call {i}: {SYSCALLS[i]}"


# The exception cause of a system call from user mode: ESR_EL1's exception class 0x15 (SVC from AArch64), scause 8
# (environment call from U-mode).
SYSCALL_CAUSE = {"aarch64": lambda esr: esr >> 26 == 0x15, "riscv64": lambda cause: cause == 8}


@pytest.mark.parametrize("arch", sorted(SYSCALL_CAUSE))
def test_syscalls_are_exception_records_under_newer_qemu(tmp_path, arch):
    """Under QEMU >= 10.2 (discontinuity callbacks) each of the eleven calls is one exception record from
    raw_syscall_insn with the system-call cause, entering the arch's entry. (x86_64's `syscall` is no exception
    in QEMU's system emulation, which changes the registers in a helper: there are none to expect.)"""
    insn = symbols(program(arch, "syscalls"))["raw_syscall_insn"]
    trace_path = tmp_path / "syscalls.trace"
    proc = record(trace_path, arch, "syscalls", "--start-on-marker", qemu=newer_qemu(arch))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result_line(proc.stdout, "syscalls")
    exceptions = memtap_api.open(trace_path).sorted(kinds=["exception"])
    calls = exceptions[exceptions["vaddr"] == insn]
    assert len(calls) == len(SYSCALLS)
    assert all(SYSCALL_CAUSE[arch](int(v)) for v in calls["value"])
    assert not np.any(calls["flags"] & RF_INTERRUPT)
    assert set(calls["pc"].tolist()) == {vmlinux_symbols(arch)[SYSCALL_ENTRY[arch][0]] + SYSCALL_ENTRY[arch][1]}


@pytest.fixture(scope="module")
def sysheavy_traces(tmp_path_factory):
    """arch -> the trace of sysheavy's marked part (fetches), recorded once per arch for the tests below."""
    traces = {}

    def get(arch: str):
        if arch not in traces:
            path = tmp_path_factory.mktemp(f"sysheavy-{arch}") / "sysheavy.trace"
            proc = record(path, arch, "sysheavy", "--start-on-marker", "--events", "fetch")
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert result_line(proc.stdout, "sysheavy") == f"sysheavy: {SYSHEAVY_N} getppid calls, ppid=1"
            traces[arch] = path
        return traces[arch]

    return get


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_sysheavy_enters_the_kernel_n_times(sysheavy_traces, arch):
    """N getppid calls: N system-call instructions, each followed on its vCPU by the system-call entry, and N
    entries of getppid's handler."""
    ksym = vmlinux_symbols(arch)
    fetches = memtap_api.open(sysheavy_traces(arch)).sorted(kinds=["fetch"])
    assert np.count_nonzero(fetches["pc"] == ksym[HANDLER_PREFIX[arch] + "getppid"]) == SYSHEAVY_N
    entry_name, entry_offset = SYSCALL_ENTRY[arch]
    insn = symbols(program(arch, "sysheavy"))["raw_syscall_insn"]
    calls = 0
    for vcpu in range(4):
        mine = fetches[fetches["vcpu"] == vcpu]
        at = np.flatnonzero((mine["pc"] == insn) & (mine["priv"] == PRIV_USER))
        assert np.all(mine["pc"][at + 1] == ksym[entry_name] + entry_offset)
        calls += len(at)
    assert calls == SYSHEAVY_N


def sysheavy_profile(trace, arch: str, directory) -> dict[str, int]:
    """Function -> Ir from `memtap profile --elf vmlinux --elf sysheavy`. vmlinux as a copy without DWARF: memtap
    decodes a whole kernel's line tables in pure Python, which takes many minutes (see guest/linux/README.md)."""
    prof = memtap("profile", str(trace), "--elf", str(symbols_only(arch, directory)),
                  "--elf", str(program(arch, "sysheavy")), "--top", "0")
    assert prof.returncode == 0, prof.stderr
    rows = [row.split() for row in prof.stdout.splitlines()[2:] if len(row.split()) == 6]
    return {fields[4]: int(fields[0].replace(",", "")) for fields in rows}


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_sysheavy_profile_names_the_handler(sysheavy_traces, tmp_path, arch):
    elf = program(arch, "sysheavy")
    ir = sysheavy_profile(sysheavy_traces(arch), arch, tmp_path)
    handler = HANDLER_PREFIX[arch] + "getppid"
    assert ir[handler] > 0 and ir[handler] % SYSHEAVY_N == 0, ir
    start, size = symbol_extent(elf, "raw_syscall")   # straight-line: each call executes all of it once
    assert ir["raw_syscall"] == len(instructions(arch, elf, start, start + size)) * SYSHEAVY_N


@pytest.mark.parametrize("arch", [
    "x86_64", "aarch64",
    pytest.param("riscv64", marks=pytest.mark.xfail(strict=True, reason=(
        "memtap.symbols names an address after the first of its aliases by binding and table order: riscv64's "
        "handle_exception (sized, 320 bytes) shares its address with zero-size linker labels such as "
        "__entry_text_end, which the profile shows instead")))])
def test_sysheavy_profile_names_the_entry(sysheavy_traces, tmp_path, arch):
    ir = sysheavy_profile(sysheavy_traces(arch), arch, tmp_path)
    assert ir.get(SYSCALL_ENTRY[arch][0], 0) > 0, ir


def _read_until(proc: subprocess.Popen, seen: bytearray, pattern: bytes, deadline: float) -> None:
    """Reads QEMU's console into seen until it holds pattern (the guest's own handshake); the deadline only
    bounds a guest that hangs."""
    while pattern not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            proc.kill()
            raise AssertionError(f"no {pattern!r} on the console:\n{seen[-3000:].decode(errors='replace')}")
        seen += chunk


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_busybox_shell_runs_a_program(arch):
    """Without memtap.run, init gives a busybox shell on the console: it runs a program with the arguments typed,
    and `exit` powers off."""
    busybox(arch)
    proc = subprocess.Popen(command(arch, None), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT
    seen = bytearray()
    try:
        _read_until(proc, seen, b"memtap-init: busybox shell", deadline)
        _read_until(proc, seen, b"# ", deadline)
        proc.stdin.write(b"falseshare 1000 && echo status=$?\n")
        proc.stdin.flush()
        _read_until(proc, seen, b"status=0", deadline)
        proc.stdin.write(b"exit\n")
        proc.stdin.flush()
        _read_until(proc, seen, b"memtap-init: sh exited with status 0", deadline)
        assert proc.wait(timeout=max(deadline - time.monotonic(), 1)) == 0
    finally:
        proc.kill()
        proc.wait()
    assert b"falseshare: counters=1000,1000,1000,1000 total=4000" in seen
