"""Build the test guests' Linux kernels from Debian's linux-source package, once, into a cache outside the git
tree: <cache>/linux-<version>-<arch>/ holds the boot image, vmlinux (symbols and DWARF), System.map and the
.config, with build-key, the hash of everything that went into them (source package version, compiler, config
fragments, this recipe), written last. A kernel whose key matches is reused; otherwise its build directory
(kept beside, for incremental rebuilds) is configured again (tinyconfig, then the fragments in config/, then
olddefconfig) and rebuilt. The cache is $MEMTAP_CACHE, else ~/.cache/memtap."""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "config"
SOURCE_DIR = Path("/usr/src")
# Changing how kernels are built (not what the fragments say) changes this, so cached kernels are rebuilt.
RECIPE = "tinyconfig + common.config + ARCH.config, olddefconfig, make IMAGE; 1"


class LinuxBuildError(RuntimeError):
    """A kernel or program could not be built, or is not built yet and was not to be."""


@dataclass(frozen=True)
class KernelArch:
    kernel_arch: str    # the kernel's ARCH=
    cross: str          # CROSS_COMPILE= prefix ("" on a host of this architecture)
    target: str         # make target of the boot image
    image: str          # the boot image, relative to the build directory


def _cross(triple: str, machine: str) -> str:
    return "" if os.uname().machine == machine else f"{triple}-"


KERNEL_ARCHES = {
    "x86_64": KernelArch("x86_64", _cross("x86_64-linux-gnu", "x86_64"), "bzImage", "arch/x86/boot/bzImage"),
    "aarch64": KernelArch("arm64", _cross("aarch64-linux-gnu", "aarch64"), "Image", "arch/arm64/boot/Image"),
    "riscv64": KernelArch("riscv", _cross("riscv64-linux-gnu", "riscv64"), "Image", "arch/riscv/boot/Image"),
}


@dataclass(frozen=True)
class Kernel:
    """A built kernel: boot image (bzImage or Image), vmlinux, System.map and .config, all in directory."""
    arch: str
    version: str
    directory: Path
    image: Path
    vmlinux: Path
    system_map: Path
    config: Path


def cache_root() -> Path:
    return Path(os.environ.get("MEMTAP_CACHE") or Path.home() / ".cache" / "memtap")


def _check_arch(arch: str) -> KernelArch:
    if arch not in KERNEL_ARCHES:
        raise LinuxBuildError(f"unknown arch {arch!r}; known: {', '.join(KERNEL_ARCHES)}")
    return KERNEL_ARCHES[arch]


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def linux_source() -> tuple[Path, str]:
    """The newest installed linux-source-X.Y tarball and its package version (e.g. 6.12.118-1~deb12u1)."""
    tarballs = sorted(SOURCE_DIR.glob("linux-source-*.tar.xz"), key=lambda p: _version_key(p.name))
    if not tarballs:
        raise LinuxBuildError(f"no {SOURCE_DIR}/linux-source-*.tar.xz: scripts/build-linux.sh installs one")
    tarball = tarballs[-1]
    package = tarball.name.removesuffix(".tar.xz")
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout:
        raise LinuxBuildError(f"dpkg-query knows no {package} (for {tarball})")
    return tarball, r.stdout.strip()


def upstream_version(package_version: str) -> str:
    """6.12.118-1~deb12u1 -> 6.12.118."""
    return re.split(r"[-+~]", package_version.split(":")[-1])[0]


def fragments(arch: str) -> list[Path]:
    _check_arch(arch)
    return [CONFIG_DIR / "common.config", CONFIG_DIR / f"{arch}.config"]


def _compiler_version(arch: str) -> str:
    cc = KERNEL_ARCHES[arch].cross + "gcc"
    try:
        r = subprocess.run([cc, "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        raise LinuxBuildError(f"{cc} not found: scripts/build-linux.sh installs it") from None
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else cc


def build_key(arch: str, package_version: str) -> str:
    h = hashlib.sha256()
    for part in (RECIPE, arch, package_version, _compiler_version(arch)):
        h.update(part.encode() + b"\0")
    for f in fragments(arch):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _kernel_at(arch: str, version: str, directory: Path) -> Kernel:
    image = directory / Path(KERNEL_ARCHES[arch].image).name
    return Kernel(arch, version, directory, image, directory / "vmlinux", directory / "System.map",
                  directory / "config")


def _extract_source(tarball: Path, package_version: str) -> Path:
    """The source tree, unpacked once per package version into the cache."""
    root = cache_root() / f"linux-source-{package_version}"
    tree = root / tarball.name.removesuffix(".tar.xz")
    if (tree / "Makefile").is_file():
        return tree
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if subprocess.run(["tar", "-xf", str(tarball), "-C", str(partial)]).returncode != 0:
        raise LinuxBuildError(f"tar could not unpack {tarball}")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    if not (tree / "Makefile").is_file():
        raise LinuxBuildError(f"{tarball} did not unpack to {tree}")
    return tree


def _wanted(fragment_files: list[Path]) -> dict[str, str]:
    """CONFIG_X -> value asked for by the fragments (the last one wins); 'n' means not set."""
    wanted = {}
    for f in fragment_files:
        for line in f.read_text().splitlines():
            m = re.fullmatch(r"(CONFIG_\w+)=(.*)", line.strip())
            if m:
                wanted[m.group(1)] = m.group(2)
    return wanted


def config_mismatches(config: Path, fragment_files: list[Path]) -> list[str]:
    """The fragments' settings that `olddefconfig` did not keep (a dependency missing, or a renamed option)."""
    have = {}
    for line in config.read_text().splitlines():
        m = re.fullmatch(r"(CONFIG_\w+)=(.*)", line) or re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if m:
            have[m.group(1)] = m.group(2) if m.lastindex == 2 else "n"
    return [f"{k}={v} (got {have.get(k, 'n')})" for k, v in _wanted(fragment_files).items()
            if have.get(k, "n") != v]


def _make(tree: Path, build_dir: Path, karch: KernelArch, *targets: str, jobs: int, log) -> None:
    cmd = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={karch.kernel_arch}", f"-j{jobs}", *targets]
    if karch.cross:
        cmd.append(f"CROSS_COMPILE={karch.cross}")
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode != 0:
        raise LinuxBuildError(f"{' '.join(cmd)} failed; the log is {log.name}")


def kernel(arch: str, build: bool = True, jobs: int | None = None) -> Kernel:
    """The kernel for arch, built first if the cache has none of this source, compiler and config (unless build
    is False: then LinuxBuildError says how to build it)."""
    karch = _check_arch(arch)
    tarball, package_version = linux_source()
    version = upstream_version(package_version)
    directory = cache_root() / f"linux-{version}-{arch}"
    key = build_key(arch, package_version)
    found = _kernel_at(arch, version, directory)
    key_file = directory / "build-key"
    if key_file.is_file() and key_file.read_text().strip() == key:
        return found
    if not build:
        raise LinuxBuildError(f"no {arch} kernel built from {tarball.name} with these config fragments in "
                              f"{directory}: scripts/build-linux.sh builds it")
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if key_file.is_file() and key_file.read_text().strip() == key:
            return found
        key_file.unlink(missing_ok=True)
        tree = _extract_source(tarball, package_version)
        build_dir = directory / "build"
        build_dir.mkdir(exist_ok=True)
        jobs = jobs or os.cpu_count() or 2
        with open(directory / "build.log", "w") as log:
            _make(tree, build_dir, karch, "tinyconfig", jobs=jobs, log=log)
            with open(build_dir / ".config", "a") as config:
                for f in fragments(arch):
                    config.write(f.read_text())
            _make(tree, build_dir, karch, "olddefconfig", jobs=jobs, log=log)
            wrong = config_mismatches(build_dir / ".config", fragments(arch))
            if wrong:
                raise LinuxBuildError(f"{arch}: olddefconfig did not keep " + ", ".join(wrong))
            _make(tree, build_dir, karch, karch.target, jobs=jobs, log=log)
        for src, dst in ((karch.image, found.image), ("vmlinux", found.vmlinux),
                         ("System.map", found.system_map), (".config", found.config)):
            shutil.copyfile(build_dir / src, dst)
        key_file.write_text(key + "\n")
    return found
