"""Test helpers for the Linux guests (guest/linux/): find the kernels scripts/build-linux.sh built, build the
programs and initramfs, boot them under plain QEMU or `memtap record`, and read what the ELF files say."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from guestlib import ROOT, memtap

LINUX_ARCHES = ("x86_64", "aarch64", "riscv64")
# scripts/test.sh sets MEMTAP_LINUX=1 after scripts/build-linux.sh: then a missing kernel fails the tests instead
# of skipping them.
LINUX_ENV = "MEMTAP_LINUX"
# Boot, run and power off, under memtap record with a full trace of the program's marked part, takes well under
# this on 2 cores; it only bounds a guest that hangs.
TIMEOUT = 600


@cache
def linux_builder():
    """guest/linux/build.py, loaded by path."""
    spec = importlib.util.spec_from_file_location("linux_guest_build", ROOT / "guest" / "linux" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _missing(message: str):
    if os.environ.get(LINUX_ENV):
        pytest.fail(f"{LINUX_ENV} is set but {message}")
    pytest.skip(message)


def kernel(arch: str):
    """arch's built kernel (skips, or fails under MEMTAP_LINUX, when scripts/build-linux.sh has not built it)."""
    b = linux_builder()
    try:
        return b.kernel(arch, build=False)
    except b.LinuxBuildError as e:
        _missing(str(e))


def busybox(arch: str) -> Path:
    path = linux_builder().busybox(arch)
    if path is None:
        _missing(f"no busybox for {arch}: scripts/build-linux.sh fetches it")
    return path


@cache
def program(arch: str, name: str) -> Path:
    return linux_builder().program(arch, name)


def command(arch: str, name: str | None, *args: str, qemu: str | None = None) -> list[str]:
    kernel(arch)
    return linux_builder().qemu_command(arch, name, args, smp=4, qemu=qemu, build=False)


def boot(arch: str, name: str, *args: str, qemu: str | None = None) -> subprocess.CompletedProcess:
    """Runs program `name` in arch's guest under plain QEMU; returns the finished QEMU (console in stdout)."""
    return subprocess.run(command(arch, name, *args, qemu=qemu), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT)


def record(trace: Path, arch: str, name: str, *options: str, qemu: str | None = None) -> subprocess.CompletedProcess:
    """`memtap record -o trace [options] -- <the guest's QEMU command>` running program `name`."""
    return memtap("record", "-o", str(trace), *options, "--", *command(arch, name, qemu=qemu), timeout=TIMEOUT)


def symbol_extent(elf: Path, name: str) -> tuple[int, int]:
    """(address, size) of symbol name in elf."""
    with open(elf, "rb") as f:
        found = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    assert found, f"no {name} in {elf}"
    return found[0]["st_value"], found[0]["st_size"]


def symbols_only(arch: str, directory: Path) -> Path:
    """A copy of arch's vmlinux without DWARF (symbols kept), made by the arch's objcopy into directory."""
    out = directory / "vmlinux.symbols"
    objcopy = linux_builder().userland.compiler(arch).removesuffix("gcc") + "objcopy"
    subprocess.run([objcopy, "--strip-debug", str(kernel(arch).vmlinux), str(out)], check=True)
    return out


def exit_status(console: str, name: str) -> int:
    """The program's exit status from init's console line (fails the test when the line is missing)."""
    m = re.search(rf"^memtap-init: {name} exited with status (\d+)\r?$", console, re.MULTILINE)
    assert m, f"no exit line for {name} on the console:\n{console[-3000:]}"
    return int(m.group(1))


def result_line(console: str, name: str) -> str:
    """The program's own result line (`NAME: ...`), after checking it exited with status 0."""
    assert exit_status(console, name) == 0, console[-3000:]
    lines = [line.rstrip("\r") for line in console.splitlines() if line.startswith(f"{name}: ")]
    assert len(lines) == 1, console[-3000:]
    return lines[0]
