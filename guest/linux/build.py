#!/usr/bin/env python3
"""Linux test guests for memtap: kernels, static user programs, initramfs and the QEMU command that boots them
(stdlib only; loadable by path like guest/build.py).

    python3 guest/linux/build.py [--arch ARCH ...] kernels            # build (or find) the kernels
    python3 guest/linux/build.py [--arch ARCH ...] programs           # build the programs and initramfs
    python3 guest/linux/build.py --arch ARCH command PROGRAM [ARG...] # print the QEMU command line
    python3 guest/linux/build.py --arch ARCH run [PROGRAM [ARG...]]   # boot it (no PROGRAM: a busybox shell)

API: kernel(arch, build=True) -> Kernel (image, vmlinux, system_map, config), program(arch, name) -> Path,
initramfs(arch, programs=None) -> Path, qemu_command(arch, program=None, args=(), smp=4, qemu=None) ->
list[str]. Arches: x86_64, aarch64, riscv64. Kernels live in $MEMTAP_CACHE or ~/.cache/memtap (see
guest/linux/README.md); scripts/build-linux.sh installs what they need and builds them.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpio_newc  # noqa: E402,F401  (for the tests: build.cpio_newc)
import kernel_build  # noqa: E402,F401  (for the tests: build.kernel_build)
import userland  # noqa: E402,F401  (for the tests: build.userland)
from kernel_build import KERNEL_ARCHES, Kernel, LinuxBuildError, cache_root, kernel  # noqa: E402
from userland import PROGRAMS, busybox, initramfs, program  # noqa: E402

ARCHES = list(KERNEL_ARCHES)
__all__ = ["ARCHES", "PROGRAMS", "Kernel", "LinuxBuildError", "busybox", "cache_root", "initramfs", "kernel",
           "program", "qemu_command"]

# Machine and console of each arch. aarch64: cortex-a76 (ARMv8.2: LSE atomics, no pointer authentication to
# emulate), which QEMU 10.0 and 10.2 both have; riscv64: QEMU's default firmware, OpenSBI.
_MACHINES = {
    "x86_64": ("qemu-system-x86_64", ["-M", "pc"], "ttyS0"),
    "aarch64": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a76"], "ttyAMA0"),
    "riscv64": ("qemu-system-riscv64", ["-M", "virt"], "ttyS0"),
}
MEMORY = "256M"


def kernel_command_line(arch: str, program_name: str | None = None, args: tuple[str, ...] = ()) -> str:
    """Console on the serial port, no KASLR, reboot (so QEMU exits, with -no-reboot) on a panic, and init's
    memtap.run / memtap.args parameters."""
    parts = [f"console={_MACHINES[arch][2]}", "nokaslr", "panic=-1", "quiet"]
    if program_name:
        parts.append(f"memtap.run={program_name}")
        if args:
            if any("," in a or " " in a for a in args):
                raise LinuxBuildError("program arguments cannot hold ',' or ' '")
            parts.append("memtap.args=" + ",".join(args))
    return " ".join(parts)


def qemu_command(arch: str, program_name: str | None = None, args: tuple[str, ...] = (), smp: int = 4,
                 qemu: str | None = None, build: bool = True) -> list[str]:
    """QEMU command line that boots arch's kernel with the initramfs, runs program_name (none: a busybox shell)
    with args, and exits with status 0 when init powers off (also after the program failed: its status is the
    console line `memtap-init: NAME exited with status N`). `qemu` replaces the emulator binary."""
    if arch not in _MACHINES:
        raise LinuxBuildError(f"unknown arch {arch!r}; known: {', '.join(_MACHINES)}")
    binary, machine, _ = _MACHINES[arch]
    image = kernel(arch, build=build).image
    rootfs = initramfs(arch, [program_name] if program_name else None)
    return [qemu or binary, *machine, "-m", MEMORY, "-smp", str(int(smp)), "-nographic", "-no-reboot",
            "-nic", "none", "-kernel", str(image), "-initrd", str(rootfs),
            "-append", kernel_command_line(arch, program_name, tuple(args))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", choices=ARCHES, help="architecture (repeatable; default: all)")
    ap.add_argument("--smp", type=int, default=4, help="CPUs (default 4)")
    ap.add_argument("--qemu", help="QEMU binary to use instead of the arch's qemu-system-*")
    ap.add_argument("action", choices=["kernels", "programs", "command", "run"])
    ap.add_argument("program", nargs="?", help="program to run (command, run)")
    ap.add_argument("args", nargs="*", help="its arguments")
    opts = ap.parse_args(argv)
    arches = opts.arch or ARCHES
    try:
        if opts.action == "kernels":
            for arch in arches:
                k = kernel(arch)
                print(f"{arch}: Linux {k.version}: {k.image} {k.vmlinux}", flush=True)
        elif opts.action == "programs":
            for arch in arches:
                print(initramfs(arch))
        else:
            if len(arches) != 1:
                ap.error(f"{opts.action} needs one --arch")
            if opts.program and opts.program not in PROGRAMS:
                ap.error(f"unknown program {opts.program!r}; known: {', '.join(PROGRAMS)}")
            cmd = qemu_command(arches[0], opts.program, tuple(opts.args), opts.smp, opts.qemu)
            if opts.action == "command":
                print(shlex.join(cmd))
            else:
                return subprocess.run(cmd).returncode
    except LinuxBuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
