"""Finding QEMU system emulators, checking that they can run memtap, and adding the plugin to a command line.

memtap needs QEMU >= 10.0 (plugin API 4, whose register reads and inline stores the plugin relies on) built with
TCG plugin support. Debian's qemu-user binaries are static and cannot load plugins, so only system emulators count.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from memtap.errors import UserError

MIN_VERSION = (10, 0)

# Emulator binary -> the Debian package that ships it.
EMULATORS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-i386": "qemu-system-x86",
    "qemu-system-aarch64": "qemu-system-arm",
    "qemu-system-arm": "qemu-system-arm",
    "qemu-system-riscv64": "qemu-system-misc",
    "qemu-system-riscv32": "qemu-system-misc",
    "qemu-system-ppc": "qemu-system-ppc",
    "qemu-system-ppc64": "qemu-system-ppc",
}


@dataclass(frozen=True)
class Emulator:
    """What memtap learnt about one QEMU binary."""

    name: str
    path: str | None
    version: tuple[int, int, int] | None
    version_text: str
    plugins: bool

    @property
    def usable(self) -> bool:
        new_enough = self.version is not None and self.version >= (*MIN_VERSION, 0)
        return self.path is not None and self.plugins and new_enough

    def problem(self) -> str | None:
        """One sentence on why this emulator cannot run memtap, or None."""
        if self.path is None:
            return f"{self.name} not found"
        if self.version is None:
            return f"{self.path}: cannot tell its version ({self.version_text or 'no output'})"
        if self.version < (*MIN_VERSION, 0):
            v = ".".join(map(str, self.version))
            return f"{self.path} is QEMU {v}; memtap needs QEMU >= {MIN_VERSION[0]}.{MIN_VERSION[1]}"
        if not self.plugins:
            return f"{self.path} was built without TCG plugin support"
        return None


def package_of(name: str) -> str:
    return EMULATORS.get(Path(name).name, "qemu-system")


def fix_command(packages: list[str]) -> str:
    """The command that installs suitable emulators on Debian 12 or 13."""
    names = " ".join(sorted(set(packages)))
    return (
        f"on Debian 13: apt-get install {names}; on Debian 12: add bookworm-backports and "
        f"apt-get install -t bookworm-backports {names} (scripts/setup-system.sh in the memtap source does both)"
    )


@cache
def probe(name_or_path: str) -> Emulator:
    """Runs the binary twice (--version, -help): cheap, and the only reliable check of plugin support."""
    name = Path(name_or_path).name
    path = shutil.which(name_or_path)
    if path is None:
        return Emulator(name, None, None, "", False)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
        helptext = subprocess.run([path, "-help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Emulator(name, path, None, str(exc), False)
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    version = (int(m[1]), int(m[2]), int(m[3])) if m else None
    first_line = out.strip().splitlines()[0] if out.strip() else ""
    return Emulator(name, path, version, first_line, "-plugin" in helptext)


def require(name_or_path: str) -> Emulator:
    """The emulator, or a UserError saying what is wrong and what fixes it."""
    emu = probe(name_or_path)
    problem = emu.problem()
    if problem:
        if not Path(name_or_path).name.startswith("qemu-system-"):
            raise UserError(f"{name_or_path}: not a QEMU system emulator (memtap record -- qemu-system-ARCH ...)")
        raise UserError(f"{problem}; fix: {fix_command([package_of(name_or_path)])}")
    return emu


def plugin_path() -> Path:
    """The compiled plugin inside the installed package."""
    lib = Path(str(resources.files("memtap._plugin"))) / "libmemtap.so"
    if not lib.is_file():
        raise UserError(f"the memtap plugin is missing ({lib}); reinstall memtap with pip")
    return lib


def plugin_option(lib: Path, args: dict[str, str]) -> str:
    """The value of QEMU's -plugin option; QEMU's option syntax escapes a comma by doubling it."""
    parts = [str(lib).replace(",", ",,")]
    parts += [f"{k}={v.replace(',', ',,')}" for k, v in args.items()]
    return ",".join(parts)


def with_plugin(command: list[str], lib: Path, args: dict[str, str]) -> list[str]:
    """The user's command line unchanged, with -plugin added right after the binary."""
    return [command[0], "-plugin", plugin_option(lib, args), *command[1:]]


def find_all() -> list[Emulator]:
    """Every known emulator name, probed on PATH."""
    return [probe(name) for name in EMULATORS]


def newer_build_dir() -> Path:
    """Where scripts/build-newer-qemu.sh puts the QEMU >= 10.2 it builds (MEMTAP_CACHE or ~/.cache/memtap)."""
    return Path(os.environ.get("MEMTAP_CACHE") or Path.home() / ".cache" / "memtap") / "qemu-newer" / "bin"


def find_newer_builds() -> list[Emulator]:
    """The emulators of that build, if there is one (not on PATH: the user names them on the command line)."""
    d = newer_build_dir()
    return [probe(str(d / name)) for name in EMULATORS if (d / name).is_file()]


def features(e: Emulator) -> str:
    """What memtap records with this QEMU beyond 10.0's baseline (docs/recording.md)."""
    v = e.version or (0, 0, 0)
    x86 = e.name in ("qemu-system-x86_64", "qemu-system-i386")   # no trap vector known: QEMU 10.0 shows no IDTR
    exceptions = "discontinuity" if v >= (10, 2, 0) else "early-exit" if x86 else "vector"
    fetch_paddr = "translated" if v >= (10, 1, 0) else "untranslated"
    return f"exceptions={exceptions} fetch-paddr={fetch_paddr}"
