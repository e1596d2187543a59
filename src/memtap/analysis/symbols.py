"""Guest addresses to functions, source lines and instructions, from the guest's ELF files.

A trace holds addresses only; the ELF files that were loaded into the guest give them meaning: the symbol table
names functions, the DWARF line programs name source lines, and capstone turns the ELF's bytes back into
instructions. Whole arrays of addresses resolve at once (sorted tables and numpy.searchsorted), so a report over
millions of instructions costs a few array operations. Anything an ELF cannot say (another architecture, no
symbol table, no DWARF, addresses it does not cover) is one warning, and the rest of the report goes on.
"""

from __future__ import annotations

import bisect
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import capstone
import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from memtap.errors import UserError

Warn = Callable[[str], None]

# ELF (machine, class) -> the QEMU targets whose guests run such code.
_TARGETS = {
    ("EM_X86_64", 64): {"x86_64"},
    ("EM_386", 32): {"i386", "x86_64"},
    ("EM_AARCH64", 64): {"aarch64"},
    ("EM_ARM", 32): {"arm", "aarch64"},
    ("EM_RISCV", 64): {"riscv64"},
    ("EM_RISCV", 32): {"riscv32"},
    ("EM_PPC", 32): {"ppc", "ppc64"},
    ("EM_PPC64", 64): {"ppc64"},
}
_EF_RISCV_RVC = 0x1


def guest_targets(machine: str, elfclass: int) -> set[str] | None:
    """The QEMU targets whose guests run an ELF of this machine and class; None when memtap does not know."""
    return _TARGETS.get((machine, elfclass))

_MAX_INSN = 16  # longest instruction of any supported architecture (x86: 15 bytes)


def _capstone_mode(machine: str, elfclass: int, little: bool, flags: int) -> tuple[int, int] | None:
    """capstone (arch, mode) for an ELF's code; None where capstone has no matching disassembler."""
    endian = capstone.CS_MODE_LITTLE_ENDIAN if little else capstone.CS_MODE_BIG_ENDIAN
    if machine == "EM_X86_64":
        return capstone.CS_ARCH_X86, capstone.CS_MODE_64
    if machine == "EM_386":
        return capstone.CS_ARCH_X86, capstone.CS_MODE_32
    if machine == "EM_AARCH64":
        return capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM | endian
    if machine == "EM_ARM":
        return capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM | endian
    if machine == "EM_RISCV":
        mode = capstone.CS_MODE_RISCV64 if elfclass == 64 else capstone.CS_MODE_RISCV32
        return capstone.CS_ARCH_RISCV, mode | (capstone.CS_MODE_RISCVC if flags & _EF_RISCV_RVC else 0)
    if machine in ("EM_PPC", "EM_PPC64"):
        return capstone.CS_ARCH_PPC, (capstone.CS_MODE_64 if elfclass == 64 else capstone.CS_MODE_32) | endian
    return None


@dataclass(frozen=True)
class ElfSpec:
    """An ELF file and its load offset: the guest runs the ELF's address A at A + offset."""

    path: Path
    offset: int = 0

    def __str__(self) -> str:
        return f"{self.path}@{self.offset:#x}" if self.offset else str(self.path)


def parse_elf_spec(text: str) -> ElfSpec:
    """``FILE`` or ``FILE@OFFSET`` (OFFSET decimal or 0x hex, may be negative): the image runs OFFSET bytes
    above its link addresses. A path that itself contains '@' is taken whole when what follows is no number."""
    path, sep, tail = text.rpartition("@")
    if sep and path:
        try:
            return ElfSpec(Path(path), int(tail.replace("_", ""), 0))
        except ValueError:
            pass
    return ElfSpec(Path(text))


@dataclass(frozen=True)
class Function:
    """A named code address: an STT_FUNC symbol (``is_function``) or an assembly label."""

    name: str
    start: int
    size: int
    elf: Path
    is_function: bool


def default_warn() -> Warn:
    """A warning sink that prints each distinct message once to stderr."""
    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            print(f"memtap: warning: {message}", file=sys.stderr)

    return warn


def _dwarf_files(dwarf, cu, program) -> list[str]:
    """Absolute, normalised source paths of a line program's file table, indexed as its rows index them."""
    top = cu.get_top_DIE()
    comp = top.attributes.get("DW_AT_comp_dir")
    comp_dir = comp.value.decode(errors="replace") if comp else ""
    dirs = [d.decode(errors="replace") for d in program["include_directory"]]
    entries = list(program["file_entry"])
    if program.header.version < 5:  # DWARF 2-4: files count from 1, directory 0 is the CU's
        dirs = [comp_dir, *dirs]
        entries = [None, *entries]
    out = []
    for e in entries:
        if e is None:
            out.append("")
            continue
        d = dirs[e.dir_index] if e.dir_index < len(dirs) else ""
        out.append(os.path.normpath(os.path.join(comp_dir, d, e.name.decode(errors="replace"))))
    return out


def open_elf(spec: ElfSpec) -> BinaryIO:
    """The ELF file opened for reading; a UserError naming it when it cannot be."""
    try:
        return open(spec.path, "rb")
    except FileNotFoundError:
        raise UserError(f"{spec.path}: no such ELF file") from None
    except OSError as e:
        raise UserError(f"{spec.path}: cannot open: {e.strerror}") from None


class _Image:
    """One ELF file: its code bytes, symbols and line rows, at run-time addresses."""

    def __init__(self, spec: ElfSpec, warn: Warn, lines: bool = True) -> None:
        self.spec = spec
        self.with_lines = lines
        with open_elf(spec) as f:
            try:
                elf = ELFFile(f)
                self._load(elf, warn)
            except ELFError as e:
                raise UserError(f"{spec.path}: not a readable ELF file ({e})") from None

    def _load(self, elf: ELFFile, warn: Warn) -> None:
        off = self.spec.offset
        self.machine = elf["e_machine"]
        self.elfclass = elf.elfclass
        self.mode = _capstone_mode(self.machine, elf.elfclass, elf.little_endian, elf["e_flags"])
        self.code: list[tuple[int, bytes]] = []
        exec_sections = {}
        for i, sec in enumerate(elf.iter_sections()):
            flags = sec["sh_flags"]
            if flags & SH_FLAGS.SHF_ALLOC and flags & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"]:
                start = sec["sh_addr"] + off
                exec_sections[i] = (start, start + sec["sh_size"])
                if sec["sh_type"] != "SHT_NOBITS":
                    self.code.append((start, sec.data()))
        self.exec_ranges = sorted(exec_sections.values())
        self.functions = self._symbols(elf, exec_sections, warn)
        empty = np.zeros(0, np.uint64)
        self.rows = self._line_rows(elf, warn) if self.with_lines else (empty, empty, [], np.zeros(0, np.uint32))

    def _symbols(self, elf: ELFFile, exec_sections: dict[int, tuple[int, int]], warn: Warn) -> list[tuple]:
        """(Function, reach end) per code symbol: a sized function reaches its end, a label its section's."""
        self.mapping: list[tuple[int, bool]] = []
        self.thumb: list[tuple[int, int]] = []
        tab = elf.get_section_by_name(".symtab")
        if tab is None or tab.num_symbols() <= 1:
            warn(f"{self.spec.path} has no symbol table (stripped): its addresses resolve to no function")
            return []
        thumb_bit = 1 if self.machine == "EM_ARM" else 0
        out = []
        for s in tab.iter_symbols():
            kind = s["st_info"]["type"]
            shndx = s["st_shndx"]
            if thumb_bit and s.name[:2] in ("$a", "$t") and s.name[2:3] in ("", "."):
                self.mapping.append((s["st_value"] + self.spec.offset, s.name[1] == "t"))
            if thumb_bit and kind == "STT_FUNC" and s["st_value"] & 1:
                start = s["st_value"] - 1 + self.spec.offset
                self.thumb.append((start, start + s["st_size"]))
            if not s.name or s.name[0] in "$." or kind not in ("STT_FUNC", "STT_NOTYPE"):
                continue
            if not isinstance(shndx, int) or shndx not in exec_sections:
                continue
            start = (s["st_value"] & ~thumb_bit) + self.spec.offset
            size = s["st_size"] if kind == "STT_FUNC" else 0
            bind = {"STB_GLOBAL": 0, "STB_WEAK": 1}.get(s["st_info"]["bind"], 2)
            reach = start + size if size else exec_sections[shndx][1]
            out.append((Function(s.name, start, size, self.spec.path, kind == "STT_FUNC"), reach, bind))
        self.mapping.sort()
        return out

    def _line_rows(self, elf: ELFFile, warn: Warn) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """(start, end, file of each row as a path, line): the address ranges of the DWARF line programs
        that lie in code, at run-time addresses. Empty when the ELF has no DWARF line table."""
        starts: list[int] = []
        ends: list[int] = []
        files: list[str] = []
        lines: list[int] = []
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_line") is None:
            warn(f"{self.spec.path} has no DWARF line table (build it with -g): no source lines")
        else:
            dwarf = elf.get_dwarf_info()
            for cu in dwarf.iter_CUs():
                program = dwarf.line_program_for_CU(cu)
                if program is None:
                    continue
                names = _dwarf_files(dwarf, cu, program)
                prev = None
                for entry in program.get_entries():
                    st = entry.state
                    if st is None:
                        continue
                    if prev is not None and st.address > prev.address and prev.line > 0:
                        starts.append(prev.address)
                        ends.append(st.address)
                        files.append(names[prev.file] if prev.file < len(names) else "")
                        lines.append(prev.line)
                    prev = None if st.end_sequence else st
        off = np.uint64(self.spec.offset % (1 << 64))
        s = np.array(starts, np.uint64) + off
        e = np.array(ends, np.uint64) + off
        keep = np.zeros(len(s), bool)
        for lo, hi in self.exec_ranges:  # drops sequences of discarded sections (linked at 0)
            keep |= (s >= np.uint64(lo)) & (e <= np.uint64(hi))
        idx = np.flatnonzero(keep & np.array([bool(f) for f in files] or [], bool))
        return s[idx], e[idx], [files[i] for i in idx], np.array(lines, np.uint32)[idx]

    def contains(self, addr: int) -> bool:
        return any(lo <= addr < hi for lo, hi in self.exec_ranges)

    def thumb_at(self, addr: int) -> bool:
        """Arm: whether addr is Thumb code, by the last $t/$a mapping symbol before it, else by the bit 0 of
        the function symbol that contains it."""
        if self.mapping:
            i = bisect.bisect_right(self.mapping, (addr, True)) - 1
            return i >= 0 and self.mapping[i][1]
        return any(lo <= addr < hi for lo, hi in self.thumb)


def _sorted_table(entries: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, reach ends, function index) sorted by start; of aliases (same start) the best-bound wins."""
    best: dict[int, tuple] = {}
    for e in sorted(entries, key=lambda e: (e[0], e[2], e[3])):
        best.setdefault(e[0], e)
    kept = list(best.values())
    return (np.array([e[0] for e in kept], np.uint64), np.array([e[1] for e in kept], np.uint64),
            np.array([e[4] for e in kept], np.int64))


def _lookup(starts: np.ndarray, ends: np.ndarray, pcs: np.ndarray) -> np.ndarray:
    """Index of the last range starting at or before each pc that still contains it, else -1."""
    if len(starts) == 0:
        return np.full(len(pcs), -1, np.int64)
    i = np.searchsorted(starts, pcs, side="right").astype(np.int64) - 1
    ok = (i >= 0) & (pcs < ends[np.maximum(i, 0)])
    return np.where(ok, i, -1)


class Symbols:
    """The symbols, source lines and code of several ELF files, checked against the trace's architecture.

    ``functions``: every code symbol (``Function``); ``files``: every source path of the line tables (none with
    ``lines=False``, which skips reading DWARF for callers that need symbols and code only).
    """

    def __init__(self, specs: Sequence[ElfSpec], arch: str | None = None, warn: Warn | None = None,
                 lines: bool = True) -> None:
        self.warn = warn or default_warn()
        self.arch = arch
        self.images: list[_Image] = []
        for spec in specs:
            image = _Image(spec, self.warn, lines)
            wanted = _TARGETS.get((image.machine, image.elfclass))
            if arch and wanted is not None and arch not in wanted:
                self.warn(f"{spec.path}: ELF for {image.machine[3:].lower()}, but the trace is from a {arch} "
                          "guest: ignoring it")
                continue
            if image.mode is None:
                self.warn(f"{spec.path}: no disassembler for {image.machine}: no instructions shown")
            self.images.append(image)
        self.functions: list[Function] = []
        sized, labels = [], []
        for image in self.images:
            for fn, reach, bind in image.functions:
                entry = (fn.start, reach, bind, fn.name, len(self.functions))
                (sized if fn.size else labels).append(entry)
                self.functions.append(fn)
        self._sized = _sorted_table(sized)
        self._labels = _sorted_table(labels)
        self._build_lines()
        self._disasm: dict[int, str | None] = {}
        self._noted: set[int] = set()
        self._outside: set[int] = set()
        self._cs: dict[tuple[int, int, bool], capstone.Cs] = {}

    def _build_lines(self) -> None:
        """One address-sorted line table over all images, with file paths numbered across them."""
        file_ids: dict[str, int] = {}
        parts = [(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.uint32))]
        for image in self.images:
            s, e, names, lines = image.rows
            ids = np.array([file_ids.setdefault(n, len(file_ids)) for n in names], np.int64)
            parts.append((s, e, ids, lines))
        self.files: list[str] = list(file_ids)
        s, e, f, ln = (np.concatenate([p[k] for p in parts]) for k in range(4))
        order = np.argsort(s, kind="stable")
        self._ls, self._le, self._lf, self._ll = s[order], e[order], f[order], ln[order]

    # --- vectorized lookups --------------------------------------------------------------------------

    def function_index(self, pcs: np.ndarray) -> np.ndarray:
        """Index into ``functions`` of each pc (-1: outside every symbol). A pc inside a sized function symbol
        resolves to it; any other to the nearest label before it in the same code section."""
        pcs = np.asarray(pcs, np.uint64)
        i = _lookup(self._sized[0], self._sized[1], pcs)
        out = np.where(i >= 0, self._sized[2][np.maximum(i, 0)], -1) if len(self._sized[2]) else i
        rest = out < 0
        if rest.any() and len(self._labels[0]):
            j = _lookup(self._labels[0], self._labels[1], pcs[rest])
            out[rest] = np.where(j >= 0, self._labels[2][np.maximum(j, 0)], -1)
        return out

    def locate(self, pcs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index into ``files`` or -1, line or 0) of each pc, from the DWARF line tables."""
        pcs = np.asarray(pcs, np.uint64)
        i = _lookup(self._ls, self._le, pcs)
        ok = i >= 0
        j = np.maximum(i, 0)
        if len(self._ls) == 0:
            return np.full(len(pcs), -1, np.int64), np.zeros(len(pcs), np.uint32)
        return np.where(ok, self._lf[j], -1), np.where(ok, self._ll[j], 0).astype(np.uint32)

    def code_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (file index, line) that has code according to the line tables, unique, sorted."""
        if len(self._lf) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32)
        key = np.unique(self._lf.astype(np.uint64) << np.uint64(32) | self._ll.astype(np.uint64))
        return (key >> np.uint64(32)).astype(np.int64), (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)

    def note_resolved(self, pcs: np.ndarray) -> None:
        """Remember which of these addresses lie outside every symbol, for ``warn_unresolved``."""
        pcs = np.unique(np.asarray(pcs, np.uint64))
        self._noted.update(pcs.tolist())
        self._outside.update(pcs[self.function_index(pcs) < 0].tolist())

    def warn_unresolved(self) -> None:
        """One warning for all noted addresses outside every symbol of the ELF files."""
        if self._outside:
            where = ", ".join(str(i.spec) for i in self.images) or "no usable ELF"
            self.warn(f"{len(self._outside)} of {len(self._noted)} instruction addresses are outside every symbol "
                      f"of {where} (lowest {min(self._outside):#x}); they are reported as ???")

    # --- names, one address at a time ---------------------------------------------------------------

    def name_at(self, pc: int, fn: int) -> str:
        """``function+0xOFF`` for a pc and its ``function_index`` result ('???' when outside every symbol)."""
        if fn < 0:
            return "???"
        f = self.functions[fn]
        return f"{f.name}+{pc - f.start:#x}"

    def code_at(self, pc: int) -> tuple[bytes, tuple[int, int]] | None:
        """The ELF bytes from pc on (up to the longest instruction) and the capstone (arch, mode) that decodes
        them; None where no ELF has code at pc or no disassembler matches."""
        image = next((i for i in self.images if i.contains(pc)), None)
        if image is None or image.mode is None:
            return None
        arch, mode = image.mode
        if image.machine == "EM_ARM" and image.thumb_at(pc):
            mode |= capstone.CS_MODE_THUMB
        for start, data in image.code:
            if start <= pc < start + len(data):
                return data[pc - start: pc - start + _MAX_INSN], (arch, mode)
        return None

    def decoder(self, arch: int, mode: int, detail: bool = False) -> capstone.Cs:
        """A capstone disassembler for (arch, mode), made once."""
        md = self._cs.get((arch, mode, detail))
        if md is None:
            md = self._cs[(arch, mode, detail)] = capstone.Cs(arch, mode)
            md.detail = detail
        return md

    def disassemble(self, pc: int) -> str | None:
        """The instruction at pc as ``mnemonic operands`` from the ELF's bytes; None where no ELF has code or
        no disassembler matches."""
        if pc in self._disasm:
            return self._disasm[pc]
        text = None
        code = self.code_at(pc)
        if code is not None:
            insn = next(self.decoder(*code[1]).disasm_lite(code[0], pc, 1), None)
            text = f"{insn[2]} {insn[3]}".strip() if insn else None
        self._disasm[pc] = text
        return text

    def describe(self, pcs: Iterable[int]) -> dict[int, str]:
        """For view: ``fn=NAME+OFF src=FILE:LINE | INSTRUCTION`` per distinct pc."""
        uniq = np.unique(np.fromiter(pcs, np.uint64))
        fns = self.function_index(uniq)
        files, lines = self.locate(uniq)
        out = {}
        for pc, fn, fi, ln in zip(uniq.tolist(), fns.tolist(), files.tolist(), lines.tolist(), strict=True):
            src = f"{os.path.basename(self.files[fi])}:{ln}" if fi >= 0 else "?"
            insn = self.disassemble(pc)
            out[pc] = f"fn={self.name_at(pc, fn)} src={src}" + (f" | {insn}" if insn else "")
        return out
