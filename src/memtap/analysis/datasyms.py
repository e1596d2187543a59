"""Guest data addresses to variables: ``name+off`` from the ELF symbol tables, and ``var.field[i]`` from DWARF.

Every allocated symbol names memory: sized objects (and functions: literal pools are read as data) cover their
bytes, labels (no size) reach to the next symbol of their section. DWARF's global and static variables add
their types, so an address inside a structure or array also resolves to the member it falls in, as mtrace's
mscan names shared addresses. Anything an ELF cannot say is one warning; the report goes on.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from elftools.common.exceptions import DWARFError, ELFError
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from memtap.analysis.symbols import ElfSpec, Warn, default_warn, guest_targets, open_elf
from memtap.errors import UserError

_TRANSPARENT = ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
                "DW_TAG_atomic_type")
_MAX_DEPTH = 16  # nesting of members and elements followed when naming a field


@dataclass(frozen=True)
class Variable:
    """A named range of guest memory at run-time addresses; ``type`` is its DWARF type entry, if known."""

    name: str
    start: int
    end: int
    type: object | None = None


class DataSymbols:
    """The data (and code) symbols of several ELF files, checked against the trace's architecture."""

    def __init__(self, specs: Sequence[ElfSpec], arch: str | None = None, warn: Warn | None = None) -> None:
        self.warn = warn or default_warn()
        self._files: list[object] = []  # open ELF files: DWARF type entries read from them lazily
        merged: list[Variable] = []
        for spec in specs:
            symbols, variables = self._load(spec, arch)
            merged += _merge(symbols, variables)
        self.variables = sorted(merged, key=lambda v: (v.start, v.end, v.name))
        self._starts = [v.start for v in self.variables]
        reach = 0
        self._reach: list[int] = []  # the furthest end of any variable up to each index
        for v in self.variables:
            reach = max(reach, v.end)
            self._reach.append(reach)

    def close(self) -> None:
        """Close the ELF files (DWARF types are read from them until then)."""
        for f in self._files:
            f.close()
        self._files = []

    def __enter__(self) -> DataSymbols:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self, spec: ElfSpec, arch: str | None) -> tuple[list[Variable], list[Variable]]:
        """(symbol table entries, DWARF variables) of one ELF file."""
        f = open_elf(spec)
        try:
            elf = ELFFile(f)
            wanted = guest_targets(elf["e_machine"], elf.elfclass)
            if arch and wanted is not None and arch not in wanted:
                f.close()
                return [], []  # Symbols, loaded beside, already warned
            self._files.append(f)
            return self._symbols(elf, spec), self._dwarf(elf, spec)
        except ELFError as e:
            f.close()
            raise UserError(f"{spec.path}: not a readable ELF file ({e})") from None

    def _symbols(self, elf: ELFFile, spec: ElfSpec) -> list[Variable]:
        """Sized symbols cover their bytes; labels reach to the next symbol of their section, or its end."""
        tab = elf.get_section_by_name(".symtab")
        if tab is None or tab.num_symbols() <= 1:
            return []
        sections = {}
        for i, sec in enumerate(elf.iter_sections()):
            if sec["sh_flags"] & SH_FLAGS.SHF_ALLOC and sec["sh_size"]:
                sections[i] = (sec["sh_addr"], sec["sh_addr"] + sec["sh_size"])
        thumb = 1 if elf["e_machine"] == "EM_ARM" else 0
        by_section: dict[int, list[tuple[int, int, str]]] = {}
        for s in tab.iter_symbols():
            kind, shndx = s["st_info"]["type"], s["st_shndx"]
            if not s.name or s.name[0] in "$." or kind not in ("STT_OBJECT", "STT_FUNC", "STT_NOTYPE"):
                continue
            if not isinstance(shndx, int) or shndx not in sections:
                continue
            start = s["st_value"] & ~(thumb if kind == "STT_FUNC" else 0)
            by_section.setdefault(shndx, []).append((start, s["st_size"], s.name))
        out = []
        for shndx, syms in by_section.items():
            syms.sort()
            starts = sorted({start for start, _, _ in syms})
            sized_starts, sized_reach, reach = [], [], 0
            for start, size, _ in syms:  # sorted by start: the furthest end of any sized symbol so far
                if size:
                    reach = max(reach, start + size)
                    sized_starts.append(start)
                    sized_reach.append(reach)
            for start, size, name in syms:
                if not size:
                    k = bisect.bisect_right(sized_starts, start) - 1
                    if k >= 0 and sized_reach[k] > start:
                        continue  # a linker label on a sized symbol (__bss_start): the symbol names it
                    j = bisect.bisect_right(starts, start)
                    size = (starts[j] if j < len(starts) else sections[shndx][1]) - start
                out.append(Variable(name, start + spec.offset, start + size + spec.offset))
        return out

    def _dwarf(self, elf: ELFFile, spec: ElfSpec) -> list[Variable]:
        """Variables with a static address (DW_OP_addr or DW_OP_addrx) and a type of known size."""
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_info") is None:
            return []
        out = []
        try:
            dwarf = elf.get_dwarf_info()
            for cu in dwarf.iter_CUs():
                parser = DWARFExprParser(cu.structs)
                for die in cu.iter_DIEs():
                    if die.tag != "DW_TAG_variable" or "DW_AT_name" not in die.attributes:
                        continue
                    addr = _static_address(dwarf, cu, parser, die)
                    ty = _type_of(die)
                    size = type_size(ty) if ty is not None else None
                    if addr is None or not size:
                        continue
                    name = die.attributes["DW_AT_name"].value.decode(errors="replace")
                    out.append(Variable(name, addr + spec.offset, addr + size + spec.offset, ty))
        except (DWARFError, ELFError, KeyError, ValueError, AssertionError) as e:
            self.warn(f"{spec.path}: DWARF variables unreadable ({e}): names come from the symbol table only")
        return out

    # --- lookups ----------------------------------------------------------------------------------------

    def overlapping(self, lo: int, hi: int) -> list[Variable]:
        """Every variable with a byte in [lo, hi), by address."""
        i = bisect.bisect_left(self._starts, hi)
        out = []
        j = i - 1
        while j >= 0 and self._reach[j] > lo:
            if self.variables[j].end > lo:
                out.append(self.variables[j])
            j -= 1
        return sorted(out, key=lambda v: (v.start, v.name))

    def names(self, lo: int, hi: int) -> list[str]:
        """``name+0xOFF`` of each variable in [lo, hi); OFF is where the range starts inside it."""
        return [f"{v.name}+{max(lo, v.start) - v.start:#x}" for v in self.overlapping(lo, hi)]

    def name_at(self, addr: int) -> str | None:
        """``name+0xOFF`` of the innermost (smallest) variable holding addr; None outside every one."""
        inside = self.overlapping(addr, addr + 1)
        if not inside:
            return None
        v = min(inside, key=lambda v: (v.end - v.start, v.name))
        return f"{v.name}+{addr - v.start:#x}"

    def field_at(self, addr: int) -> str | None:
        """The member an address falls in, from DWARF types: ``counters.c[1]``, ``buf[3]+0x2``; None without
        a typed variable there."""
        for v in self.overlapping(addr, addr + 1):
            if v.type is not None:
                return _field_path(v.name, v.type, addr - v.start)
        return None


def _merge(symbols: list[Variable], variables: list[Variable]) -> list[Variable]:
    """The symbol table's entries, each with the type of the DWARF variable covering exactly its bytes (the
    symbol's name is kept: it says more for static locals, `mt_exit.block`), plus the DWARF variables no symbol
    covers."""
    by_range: dict[tuple[int, int], list[int]] = {}
    out = list(symbols)
    for i, v in enumerate(out):
        by_range.setdefault((v.start, v.end), []).append(i)
    for v in variables:
        same = by_range.get((v.start, v.end))
        if same:
            for i in same:
                if out[i].type is None:
                    out[i] = Variable(out[i].name, v.start, v.end, v.type)
        else:
            by_range[(v.start, v.end)] = [len(out)]
            out.append(v)
    return out


# --- DWARF helpers ----------------------------------------------------------------------------------------

def _static_address(dwarf, cu, parser: DWARFExprParser, die) -> int | None:
    loc = die.attributes.get("DW_AT_location")
    if loc is None or loc.form not in ("DW_FORM_exprloc", "DW_FORM_block1", "DW_FORM_block2", "DW_FORM_block4",
                                       "DW_FORM_block"):
        return None
    try:
        ops = parser.parse_expr(loc.value)
    except (KeyError, IndexError, ValueError):
        return None
    if len(ops) != 1:
        return None
    if ops[0].op_name == "DW_OP_addr":
        return int(ops[0].args[0])
    if ops[0].op_name == "DW_OP_addrx":
        return int(dwarf.get_addr(cu, ops[0].args[0]))
    return None


def _type_of(die):
    if "DW_AT_type" in die.attributes:
        return die.get_DIE_from_attribute("DW_AT_type")
    spec = die.attributes.get("DW_AT_specification")
    if spec is not None:
        return _type_of(die.get_DIE_from_attribute("DW_AT_specification"))
    return None


def _strip(ty, depth: int = 0):
    while ty is not None and ty.tag in _TRANSPARENT and depth < _MAX_DEPTH:
        ty = _type_of(ty)
        depth += 1
    return ty


def _array_dims(ty) -> list[int]:
    dims = []
    for sub in ty.iter_children():
        if sub.tag != "DW_TAG_subrange_type":
            continue
        if "DW_AT_count" in sub.attributes:
            dims.append(int(sub.attributes["DW_AT_count"].value))
        elif "DW_AT_upper_bound" in sub.attributes:
            dims.append(int(sub.attributes["DW_AT_upper_bound"].value) + 1)
        else:
            dims.append(0)
    return dims


def type_size(ty, depth: int = 0) -> int | None:
    """Bytes of a DWARF type; None when DWARF does not say (incomplete types, flexible arrays)."""
    ty = _strip(ty)
    if ty is None or depth > _MAX_DEPTH:
        return None
    if "DW_AT_byte_size" in ty.attributes:
        return int(ty.attributes["DW_AT_byte_size"].value)
    if ty.tag == "DW_TAG_array_type":
        elem = type_size(_type_of(ty), depth + 1)
        n = 1
        for d in _array_dims(ty):
            n *= d
        return elem * n if elem is not None else None
    return None


def _member_offset(member) -> int | None:
    loc = member.attributes.get("DW_AT_data_member_location")
    if loc is None:
        return 0  # union members
    return int(loc.value) if isinstance(loc.value, int) else None


def _field_path(name: str, ty, off: int) -> str:
    """Follow members and array elements down to the byte at ``off``."""
    path = name
    for _ in range(_MAX_DEPTH):
        ty = _strip(ty)
        if ty is None:
            break
        if ty.tag == "DW_TAG_array_type":
            elem = _type_of(ty)
            size = type_size(elem)
            dims = _array_dims(ty)
            if not size or not dims:
                break
            flat = off // size
            idx, rest = [], flat
            for d in reversed(dims[1:]):
                idx.append(rest % d)
                rest //= d
            idx.append(rest)
            path += "".join(f"[{i}]" for i in reversed(idx))
            off -= flat * size
            ty = elem
            continue
        if ty.tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            chosen = None
            for m in ty.iter_children():
                if m.tag != "DW_TAG_member" or "DW_AT_name" not in m.attributes:
                    continue
                start = _member_offset(m)
                size = type_size(_type_of(m))
                if start is not None and size and start <= off < start + size:
                    chosen = (m, start)
                    break
            if chosen is None:
                break
            m, start = chosen
            path += "." + m.attributes["DW_AT_name"].value.decode(errors="replace")
            off -= start
            ty = _type_of(m)
            continue
        break
    return path + (f"+{off:#x}" if off else "")
