"""Test helpers: build the bundled guests, run them under `memtap record`, and read what the ELF says.

The expected records in the tests come from the guest ELF files (symbols from pyelftools, instruction boundaries
from capstone), never from the trace under test.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import capstone
import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from memtap.trace import layout
from memtap.trace.reader import open_trace

ROOT = Path(__file__).resolve().parent.parent
# Every guest arch. ARCHES is the first three, which every test covers; the record tests (exact, fault,
# completeness, smp, mmu) cover ALL_ARCHES.
ALL_ARCHES = ("x86_64", "aarch64", "riscv64", "i386", "riscv32", "arm", "arm-thumb", "ppc")
ARCHES = ALL_ARCHES[:3]

_CAPSTONE = {
    "x86_64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
    "aarch64": (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM),
    "riscv64": (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC),
    "i386": (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
    "riscv32": (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC),
    "arm": (capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM),
    "arm-thumb": (capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB),
    "ppc": (capstone.CS_ARCH_PPC, capstone.CS_MODE_32 | capstone.CS_MODE_BIG_ENDIAN),
}


@cache
def builder():
    """guest/build.py, loaded by path (guest/ is not a package)."""
    spec = importlib.util.spec_from_file_location("guest_build", ROOT / "guest" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def guest(arch: str, program: str) -> Path:
    return builder().build(arches=[arch], programs=[program])[arch][program]


@cache
def symbols(elf: Path) -> dict[str, int]:
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in tab.iter_symbols() if s.name}


def instructions(arch: str, elf: Path, start: int, end: int) -> list[tuple[int, int]]:
    """(address, size) of each instruction in [start, end), by linear disassembly of the ELF's bytes."""
    return [(addr, size) for addr, size, _ in disassembly(arch, elf, start, end)]


def disassembly(arch: str, elf: Path, start: int, end: int) -> list[tuple[int, int, str]]:
    """(address, size, 'mnemonic operands') of each instruction in [start, end), from the ELF's bytes."""
    with open(elf, "rb") as f:
        e = ELFFile(f)
        for seg in e.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= start < seg["p_vaddr"] + seg["p_filesz"]:
                data = seg.data()[start - seg["p_vaddr"] : end - seg["p_vaddr"]]
                break
        else:
            raise AssertionError(f"{start:#x} is in no loadable segment of {elf}")
    md = capstone.Cs(*_CAPSTONE[arch])
    md.skipdata = True
    out = [(i.address, i.size, f"{i.mnemonic} {i.op_str}".strip()) for i in md.disasm(data, start)]
    assert sum(size for _, size, _ in out) == end - start, "disassembly did not cover the range"
    return out


def qemu_command(arch: str, elf: Path, smp: int = 1, qemu: str | None = None) -> list[str]:
    """The guest's QEMU command line; `qemu` replaces the emulator binary (e.g. newer_qemu(arch))."""
    command = builder().qemu_command(arch, elf, smp=smp)
    return [qemu or command[0], *command[1:]]


# A QEMU >= 10.2 (plugin API 5: translate_vaddr, discontinuity callbacks), built by scripts/build-newer-qemu.sh.
# scripts/test.sh sets MEMTAP_NEWER_QEMU to its bin directory, so there a missing build fails the tests that need
# it; elsewhere they use the script's default prefix, or skip.
NEWER_QEMU_ENV = "MEMTAP_NEWER_QEMU"
NEWER_QEMU_DEFAULT = Path.home() / ".cache" / "memtap" / "qemu-newer" / "bin"


def newer_qemu(arch: str) -> str:
    """Path of the newer QEMU's emulator for arch's guests."""
    binary = builder().arch_config(arch)["qemu"]
    configured = os.environ.get(NEWER_QEMU_ENV)
    path = Path(configured or NEWER_QEMU_DEFAULT) / binary
    if path.is_file():
        return str(path)
    if configured:
        pytest.fail(f"{NEWER_QEMU_ENV}={configured} has no {binary}: scripts/build-newer-qemu.sh builds it")
    pytest.skip(f"no QEMU >= 10.2 at {NEWER_QEMU_DEFAULT} (scripts/build-newer-qemu.sh builds one)")


def memtap(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Runs the installed memtap CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "memtap.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def record(trace: Path, arch: str, program: str, *options: str, smp: int = 1, timeout: float = 120,
           qemu: str | None = None):
    """`memtap record -o trace [options] -- <the guest's QEMU command>`; returns the finished process."""
    elf = guest(arch, program)
    return memtap("record", "-o", str(trace), *options, "--", *qemu_command(arch, elf, smp, qemu),
                  timeout=timeout)


def instruction_at(arch: str, elf: Path, addr: int) -> tuple[int, int]:
    """(address, size) of the one instruction at addr."""
    for size in range(1, 16):
        try:
            found = instructions(arch, elf, addr, addr + size)
        except AssertionError:
            continue
        if len(found) == 1:
            return found[0]
    raise AssertionError(f"no instruction decodes at {addr:#x}")


def raw_events(path: Path) -> np.ndarray:
    """Every EVENTS chunk's events, undecoded (trace.h's event layout), in file order: for tests of how the
    plugin packs records into events. Payloads come from the reader's own checked read."""
    trace = open_trace(path)
    values = bool(trace.info.get("values"))
    with open(path, "rb") as f:
        out = [layout.columns_to_events(trace._read_payload(f, c.index), c.count, values)
               for c in trace.chunks if c.type == layout.CHUNK_EVENTS]
    return np.concatenate(out) if out else np.zeros(0, layout.EVENT)
