#!/usr/bin/env python3
"""Build the memtap guest programs for every architecture (stdlib only).

    python3 guest/build.py [--arch ARCH ...] [--program NAME ...] [--force] [--list] [--run] [-v]

Output: guest/build/<arch>/<program>.elf. Incremental: an object is rebuilt when its source, any shared header,
the arch's arch.json or this file is newer; an ELF is relinked when an object or link.ld is newer.
Importable by path (see guest/README.md): build(arches=None, programs=None) -> {arch: {program: Path}},
qemu_command(arch, elf, smp=1) -> list[str].
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

GUEST = Path(__file__).resolve().parent
BUILD_DIR = GUEST / "build"
PROGRAMS_DIR = GUEST / "programs"
INCLUDE_DIR = GUEST / "include"
LIB_DIR = GUEST / "lib"

# Programs in a fixed order; any other guest/programs/*.c is appended.
BASE_PROGRAMS = ["demo", "seq", "fault", "smp", "region", "crc32", "ptrchase", "sort", "matmul", "fail"]
# Sources shared by every program of every arch (relative to guest/).
COMMON_SOURCES = ["lib/string.c", "lib/print.c"]

COMMON_CFLAGS = [
    "-ffreestanding", "-fno-builtin", "-nostdlib", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-std=c11",
    "-fno-pic", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
]


class BuildError(RuntimeError):
    pass


def _discover_arches():
    return sorted(p.name for p in GUEST.iterdir() if (p / "arch.json").is_file())


def _discover_programs():
    """BASE_PROGRAMS, then portable programs/*.c, then programs that exist for some arches only (<arch>/NAME.S
    that is not a platform source)."""
    progs = list(BASE_PROGRAMS)
    candidates = sorted(PROGRAMS_DIR.glob("*.c")) if PROGRAMS_DIR.is_dir() else []
    for arch in _discover_arches():
        platform = set(arch_config(arch).get("platform_sources", ["start.S", "platform.c"]))
        candidates += [p for p in sorted((GUEST / arch).glob("*.S")) if p.name not in platform]
    for p in candidates:
        if p.stem not in progs:
            progs.append(p.stem)
    return progs


def has_program(arch, program):
    """Whether program has a source for arch (portable C, or the arch's own assembly)."""
    return (PROGRAMS_DIR / f"{program}.c").is_file() or (GUEST / arch / f"{program}.S").is_file()


def arch_config(arch):
    path = GUEST / arch / "arch.json"
    if not path.is_file():
        raise BuildError(f"unknown arch {arch!r} (no {path})")
    with open(path) as f:
        return json.load(f)


ARCHES = _discover_arches()
PROGRAMS = _discover_programs()


def _tool(name):
    """Find an LLVM tool, also as a versioned name (clang-14, ld.lld-14)."""
    if shutil.which(name):
        return name
    for v in range(30, 10, -1):
        if shutil.which(f"{name}-{v}"):
            return f"{name}-{v}"
    raise BuildError(f"tool not found: {name}")


def _mtime(p):
    try:
        return p.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _headers(arch):
    hs = list(INCLUDE_DIR.glob("*.h")) + list(LIB_DIR.glob("*.h")) + list((GUEST / arch).glob("*.h"))
    return hs + [GUEST / arch / "arch.json", Path(__file__).resolve()]


def program_sources(arch, program):
    """Program-specific sources of one program for one arch (list of Paths)."""
    srcs = []
    c = PROGRAMS_DIR / f"{program}.c"
    s = GUEST / arch / f"{program}.S"
    if c.is_file():
        srcs.append(c)
    if s.is_file():
        srcs.append(s)
    if not srcs:
        raise BuildError(f"program {program!r} has no source for {arch} ({c} or {s})")
    return srcs


def _subst(s, elf, smp=1):
    base = str(elf)[:-4] if str(elf).endswith(".elf") else str(elf)
    return s.replace("{elf}", str(elf)).replace("{base}", base).replace("{smp}", str(smp))


def _run(cmd, verbose):
    if verbose:
        print(" ".join(str(c) for c in cmd), flush=True)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("command failed: " + " ".join(str(c) for c in cmd) + "\n" + r.stdout + r.stderr)
    if r.stderr and verbose:
        sys.stderr.write(r.stderr)


def _plan_arch(arch, programs, force):
    """Return (compile jobs, link jobs) for one arch. A compile job is (src, obj, cmd); a link job is
    (elf, objs, cmd, post_cmds)."""
    cfg = arch_config(arch)
    adir = GUEST / arch
    odir = BUILD_DIR / arch / "obj"
    clang = _tool("clang")
    base_cmd = [clang, f"--target={cfg['clang_target']}"] + COMMON_CFLAGS + list(cfg.get("cflags", [])) + [
        f"-I{INCLUDE_DIR}", f"-I{LIB_DIR}", f"-I{adir}"]
    deps = _headers(arch)
    dep_time = max(_mtime(d) for d in deps)
    compiles = {}

    def obj_for(src, subdir, extra):
        rel = src.name.replace(".", "_") + ".o"
        obj = odir / subdir / rel
        if obj not in compiles:
            stale = force or _mtime(obj) < max(_mtime(src), dep_time)
            cmd = base_cmd + list(extra) + ["-c", src, "-o", obj]
            compiles[obj] = (src, obj, cmd, stale)
        return obj

    plat = [adir / s for s in cfg.get("platform_sources", ["start.S", "platform.c"])]
    plat += [GUEST / s for s in COMMON_SOURCES]
    plat_objs = [obj_for(s, "_platform", []) for s in plat]

    links = []
    lld = _tool("ld.lld")
    ldscript = adir / cfg.get("link_script", "link.ld")
    for prog in (p for p in programs if has_program(arch, p)):
        extra = cfg.get("program_cflags", {}).get(prog, [])
        objs = plat_objs + [obj_for(s, prog, extra) for s in program_sources(arch, prog)]
        elf = BUILD_DIR / arch / f"{prog}.elf"
        cmd = [lld, "-nostdlib", "-static", "-T", ldscript, "-e", "_start"] + list(cfg.get("ldflags", [])) + [
            "-o", elf] + objs
        post = [[_subst(str(a), elf) for a in c] for c in cfg.get("post_link", [])]
        links.append((prog, elf, objs, cmd, post, ldscript))
    return list(compiles.values()), links


def build(arches=None, programs=None, force=False, verbose=False, jobs=None):
    """Build the given (default: all) programs for the given (default: all) arches.

    Returns {arch: {program: Path of the ELF}}. Raises BuildError on failure."""
    arches = list(arches) if arches else list(ARCHES)
    programs = list(programs) if programs else list(PROGRAMS)
    for a in arches:
        if a not in ARCHES:
            raise BuildError(f"unknown arch {a!r}; known: {', '.join(ARCHES)}")
    for p in programs:
        if p not in PROGRAMS:
            raise BuildError(f"unknown program {p!r}; known: {', '.join(PROGRAMS)}")
    plans = [(a,) + _plan_arch(a, programs, force) for a in arches]
    jobs = jobs or os.cpu_count() or 2
    todo = [c for _, cs, _ in plans for c in cs if c[3]]
    for _, obj, _, _ in todo:
        obj.parent.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = [ex.submit(_run, cmd, verbose) for _, _, cmd, _ in todo]
        errors = []
        for f in futs:
            try:
                f.result()
            except BuildError as e:
                errors.append(str(e))
        if errors:
            raise BuildError("\n".join(errors))
        out = {}
        link_futs = []
        for arch, _, links in plans:
            out[arch] = {}
            for prog, elf, objs, cmd, post, ldscript in links:
                out[arch][prog] = elf
                newest = max([_mtime(o) for o in objs] + [_mtime(ldscript)])
                if force or _mtime(elf) < newest:
                    def do_link(cmd=cmd, post=post):
                        _run(cmd, verbose)
                        for p in post:
                            _run(p, verbose)
                    link_futs.append(ex.submit(do_link))
        for f in link_futs:
            try:
                f.result()
            except BuildError as e:
                errors.append(str(e))
        if errors:
            raise BuildError("\n".join(errors))
    return out


def qemu_command(arch, elf, smp=1):
    """Full QEMU command line running ELF bare-metal (console on stdio, QEMU exits when the guest exits)."""
    cfg = arch_config(arch)
    smp = int(smp)
    if smp > 1 and not cfg.get("smp", False):
        raise ValueError(f"{arch}: SMP not supported")
    args = [_subst(str(a), Path(elf), smp) for a in cfg["qemu_args"]]
    # Options one program needs beyond the arch's (e.g. a CPU model with the instructions it was built for);
    # a later -cpu replaces an earlier one.
    args += cfg.get("program_qemu_args", {}).get(Path(elf).stem, [])
    return [cfg["qemu"]] + args + ["-m", cfg.get("memory", "128M"), "-smp", str(smp), "-nographic",
                                   "-no-reboot"]


# CPUs each program needs (default 1).
PROGRAM_SMP = {"smp": 4, "share": 4}
# Expected guest exit code (default 0); QEMU's exit status is non-zero iff this is.
PROGRAM_EXIT = {"fail": 3}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", help="architecture (repeatable; default: all)")
    ap.add_argument("--program", action="append", help="program (repeatable; default: all)")
    ap.add_argument("--force", action="store_true", help="rebuild everything")
    ap.add_argument("--list", action="store_true", help="list arches and programs and exit")
    ap.add_argument("--run", action="store_true", help="run each built program under plain QEMU")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("arches:", " ".join(ARCHES))
        print("programs:", " ".join(PROGRAMS))
        return 0
    try:
        out = build(args.arch, args.program, force=args.force, verbose=args.verbose)
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    status = 0
    for arch, progs in out.items():
        for prog, elf in progs.items():
            if not args.run:
                print(elf.relative_to(GUEST.parent) if elf.is_relative_to(GUEST.parent) else elf)
                continue
            cmd = qemu_command(arch, elf, PROGRAM_SMP.get(prog, 1))
            print(f"== {arch}/{prog}: {' '.join(cmd)}", flush=True)
            try:
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=60)
                rc = r.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            print(f"== {arch}/{prog}: exit {rc}", flush=True)
            expected_ok = (rc == 0) if PROGRAM_EXIT.get(prog, 0) == 0 else (rc not in (0, "timeout"))
            if not expected_ok:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
