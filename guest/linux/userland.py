"""The test guests' user space: static programs built with Debian's (cross) gcc and glibc, and an initramfs (a
newc cpio, written here) holding /init (init.c), the programs in /bin and, when scripts/build-linux.sh fetched
it, Debian's busybox-static as /bin/busybox for an interactive shell. Outputs go to guest/build/linux/<arch>/."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cpio_newc
from kernel_build import LinuxBuildError, cache_root

HERE = Path(__file__).resolve().parent
PROGRAMS_DIR = HERE / "programs"
BUILD_DIR = HERE.parent / "build" / "linux"
INCLUDE_DIRS = [HERE.parent / "include", PROGRAMS_DIR]
PROGRAMS = sorted(p.stem for p in PROGRAMS_DIR.glob("*.c"))
CFLAGS = ["-static", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"]

_TRIPLES = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu", "riscv64": "riscv64-linux-gnu"}
# Debian's architecture names, which name the busybox-static .debs.
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}


def compiler(arch: str) -> str:
    if arch not in _TRIPLES:
        raise LinuxBuildError(f"unknown arch {arch!r}; known: {', '.join(_TRIPLES)}")
    return "gcc" if os.uname().machine == arch else f"{_TRIPLES[arch]}-gcc"


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _compile(arch: str, source: Path, out: Path) -> Path:
    deps = [source, Path(__file__), *(PROGRAMS_DIR.glob("*.h")), *(d / "memtap.h" for d in INCLUDE_DIRS)]
    if _mtime(out) >= max(_mtime(d) for d in deps):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")   # renamed into place: concurrent builders never see half
    cmd = [compiler(arch), *CFLAGS, *(f"-I{d}" for d in INCLUDE_DIRS), "-o", str(tmp), str(source)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise LinuxBuildError(f"{cmd[0]} not found: scripts/build-linux.sh installs it") from None
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise LinuxBuildError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    tmp.replace(out)
    return out


def program(arch: str, name: str) -> Path:
    """The static ELF of test program `name` for arch (symbols and DWARF kept), built if out of date."""
    if name not in PROGRAMS:
        raise LinuxBuildError(f"unknown program {name!r}; known: {', '.join(PROGRAMS)}")
    return _compile(arch, PROGRAMS_DIR / f"{name}.c", BUILD_DIR / arch / name)


def init(arch: str) -> Path:
    return _compile(arch, HERE / "init.c", BUILD_DIR / arch / "init")


def busybox(arch: str) -> Path | None:
    """Debian's static busybox for arch, if scripts/build-linux.sh fetched it."""
    path = cache_root() / "busybox" / DEBIAN_ARCHES[arch] / "busybox"
    return path if path.is_file() else None


def initramfs(arch: str, programs: list[str] | None = None, with_busybox: bool = True) -> Path:
    """The initramfs (uncompressed newc cpio) with /init, the given programs (default: all) in /bin and busybox
    (when fetched and with_busybox). Rewritten only when its contents change."""
    names = sorted(programs if programs is not None else PROGRAMS)
    entries = [cpio_newc.directory(d) for d in ("bin", "dev", "proc", "sys", "tmp")]
    entries.append(cpio_newc.char_device("dev/console", 5, 1))
    entries.append(cpio_newc.file("init", init(arch).read_bytes()))
    entries += [cpio_newc.file(f"bin/{n}", program(arch, n).read_bytes()) for n in names]
    bb = busybox(arch) if with_busybox else None
    if bb:
        entries.append(cpio_newc.file("bin/busybox", bb.read_bytes()))
        entries.append(cpio_newc.symlink("bin/sh", "busybox"))
    suffix = "" if programs is None else "-" + "-".join(names or ["none"])
    out = BUILD_DIR / arch / f"initramfs{suffix}{'' if with_busybox else '-nobusybox'}.cpio"
    data = cpio_newc.archive(entries)
    if not out.is_file() or out.read_bytes() != data:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(out)
    return out
