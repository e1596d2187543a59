"""What the exporters need to know about each executed instruction, from the guest's ELF bytes: its branch
class (call, return, conditional, jump, ...), the registers it reads and writes in ChampSim's numbering, and
the function that starts at its address.

Calls and returns per architecture: x86 and AArch64 from capstone's groups (call, ret/return) and mnemonics;
RISC-V from the encoding itself, by the ISA's return-address-stack hints (jal/jalr writing ra or t0 is a call,
jalr x0 through ra or t0 a return), since capstone 5 labels ``j`` a call. Other architectures: capstone's groups.
"""

from __future__ import annotations

import capstone
import numpy as np

from memtap.analysis.symbols import Symbols
from memtap.errors import UserError
from memtap.export import native as N
from memtap.export.stream import Options, Source, Warn

# ChampSim's special registers (inc/trace_instruction.h): its branch types are inferred from these alone.
SP, FLAGS, IP = 6, 25, 26


def _numbering(names: list[str]) -> dict[str, int]:
    """Register names -> ChampSim register numbers 1.., skipping the three special ones."""
    free = [n for n in range(1, 200) if n not in (SP, FLAGS, IP)]
    return dict(zip(names, free, strict=False))


_X86_GPR = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp"] + [f"r{i}" for i in range(8, 16)]
_X86 = _numbering(_X86_GPR + [f"v{i}" for i in range(32)])
_X86_ALIAS = {"eax": "rax", "ax": "rax", "al": "rax", "ah": "rax", "ebx": "rbx", "bx": "rbx", "bl": "rbx",
              "bh": "rbx", "ecx": "rcx", "cx": "rcx", "cl": "rcx", "ch": "rcx", "edx": "rdx", "dx": "rdx",
              "dl": "rdx", "dh": "rdx", "esi": "rsi", "si": "rsi", "sil": "rsi", "edi": "rdi", "di": "rdi",
              "dil": "rdi", "ebp": "rbp", "bp": "rbp", "bpl": "rbp"}
_ARM64 = _numbering([f"x{i}" for i in range(31)] + [f"v{i}" for i in range(32)])
_RISCV_X = ["ra", "gp", "tp", "t0", "t1", "t2", "s0", "s1"] + [f"a{i}" for i in range(8)] + \
    [f"s{i}" for i in range(2, 12)] + ["t3", "t4", "t5", "t6"]
_RISCV_F = [f"ft{i}" for i in range(12)] + [f"fs{i}" for i in range(12)] + [f"fa{i}" for i in range(8)]
_RISCV = _numbering(_RISCV_X + _RISCV_F)
_OTHER = 255   # a register outside the tables: one shared number (a dependency approximation)


def champsim_register(arch: int, name: str) -> int:
    """ChampSim's number for a capstone register name; 0 for the zero register (no dependency)."""
    if arch == capstone.CS_ARCH_X86:
        if name in ("rsp", "esp", "sp", "spl"):
            return SP
        if name in ("rip", "eip", "ip"):
            return IP
        if name in ("rflags", "eflags", "flags"):
            return FLAGS
        if name[:1] == "r" and name[1:].rstrip("dwb").isdigit():
            return _X86[f"r{name[1:].rstrip('dwb')}"]
        if name[:3] in ("xmm", "ymm", "zmm") and name[3:].isdigit():
            return _X86[f"v{name[3:]}"]
        return _X86.get(_X86_ALIAS.get(name, name), _OTHER)
    if arch == capstone.CS_ARCH_ARM64:
        if name in ("sp", "wsp"):
            return SP
        if name == "nzcv":
            return FLAGS
        if name in ("xzr", "wzr"):
            return 0
        name = {"fp": "x29", "lr": "x30"}.get(name, name)
        if name[:1] in "xw" and name[1:].isdigit():
            return _ARM64[f"x{name[1:]}"]
        if name[:1] in "vqdshb" and name[1:].isdigit():
            return _ARM64[f"v{name[1:]}"]
        return _OTHER
    if arch == capstone.CS_ARCH_RISCV:
        if name == "zero":
            return 0
        if name == "sp":
            return SP
        return _RISCV.get({"fp": "s0"}.get(name, name), _OTHER)
    return _OTHER


# --- branch classes ----------------------------------------------------------------------------------------------

_RISCV_LINK = (1, 5)   # ra and t0: the registers the ISA's return-address-stack hints name


def riscv_class(code: bytes, rv32: bool) -> int:
    """Branch class of the RISC-V instruction at the start of code, from its encoding."""
    if len(code) < 2:
        return N.NOT_BRANCH
    half = int.from_bytes(code[:2], "little")
    if half & 3 != 3:   # compressed
        op, funct3 = half & 3, half >> 13
        if op == 1 and funct3 == 5:
            return N.JUMP                                # c.j
        if op == 1 and funct3 == 1 and rv32:
            return N.CALL                                # c.jal
        if op == 1 and funct3 in (6, 7):
            return N.COND                                # c.beqz, c.bnez
        rs1, rs2 = (half >> 7) & 31, (half >> 2) & 31
        if op == 2 and funct3 == 4 and rs2 == 0 and rs1 != 0:
            if half >> 12 & 1:
                return N.CALL_INDIRECT                   # c.jalr
            return N.RETURN if rs1 in _RISCV_LINK else N.JUMP_INDIRECT   # c.jr
        return N.NOT_BRANCH
    if len(code) < 4:
        return N.NOT_BRANCH
    word = int.from_bytes(code[:4], "little")
    opcode, rd, rs1 = word & 0x7F, (word >> 7) & 31, (word >> 15) & 31
    if opcode == 0x6F:                                   # jal
        return N.CALL if rd in _RISCV_LINK else N.JUMP if rd == 0 else N.BRANCH_OTHER
    if opcode == 0x67:                                   # jalr
        if rd in _RISCV_LINK:
            return N.CALL_INDIRECT
        if rd == 0:
            return N.RETURN if rs1 in _RISCV_LINK else N.JUMP_INDIRECT
        return N.BRANCH_OTHER
    if opcode == 0x63:
        return N.COND
    if word in (0x30200073, 0x10200073, 0x7B200073):     # mret, sret, dret
        return N.BRANCH_OTHER
    return N.NOT_BRANCH


def capstone_class(insn: capstone.CsInsn) -> int:
    """Branch class of an x86, AArch64 or other instruction from capstone's groups and mnemonic."""
    groups = set(insn.groups)
    mnem = insn.mnemonic
    imm = bool(insn.operands) and insn.operands[0].type == capstone.CS_OP_IMM
    if capstone.CS_GRP_CALL in groups:
        return N.CALL if imm else N.CALL_INDIRECT
    if capstone.CS_GRP_RET in groups:
        return N.RETURN
    if capstone.CS_GRP_IRET in groups or mnem in ("eret", "eretaa", "eretab", "sysret", "sysretq", "sysexit"):
        return N.BRANCH_OTHER
    if capstone.CS_GRP_JUMP in groups:
        if mnem in ("jmp", "b", "ljmp"):
            return N.JUMP if imm else N.JUMP_INDIRECT
        if mnem in ("br", "braa", "brab", "braaz", "brabz"):
            return N.JUMP_INDIRECT
        return N.COND
    return N.NOT_BRANCH


# --- registers -----------------------------------------------------------------------------------------------------

_RISCV_STORES = ("sb", "sh", "sw", "sd", "fsw", "fsd", "c.sw", "c.sd", "c.swsp", "c.sdsp", "c.fsw", "c.fsd",
                 "c.fswsp", "c.fsdsp")
_RISCV_ONLY_WRITE = ("c.mv", "c.li", "c.lui", "c.lw", "c.ld", "c.lwsp", "c.ldsp", "c.flw", "c.fld", "c.flwsp",
                     "c.fldsp", "c.addi4spn")


def _riscv_regs(insn: capstone.CsInsn, cls: int) -> tuple[list[str], list[str]]:
    """(read, written) register names of a RISC-V instruction, from its operand positions (capstone 5 gives no
    access for RISC-V): stores and branches only read; otherwise the first operand is the destination."""
    regs = []
    for op in insn.operands:
        if op.type == capstone.CS_OP_REG:
            regs.append(insn.reg_name(op.reg))
        elif op.type == capstone.CS_OP_MEM:
            regs.append(insn.reg_name(op.mem.base))
    mnem = insn.mnemonic
    if cls != N.NOT_BRANCH or mnem in _RISCV_STORES or not regs or not insn.operands \
            or insn.operands[0].type != capstone.CS_OP_REG:
        return regs, []
    reads = regs[1:]
    if mnem.startswith("c.") and mnem not in _RISCV_ONLY_WRITE:
        reads = regs   # two-operand compressed forms read their destination too
    return reads, regs[:1]


def champsim_registers(arch: int, insn: capstone.CsInsn, cls: int) -> tuple[list[int], list[int]]:
    """(sources, destinations) in ChampSim's numbering, with the special registers set the way ChampSim infers
    this instruction's branch type (see docs/formats.md)."""
    if arch == capstone.CS_ARCH_RISCV:
        read, written = _riscv_regs(insn, cls)
    else:
        try:
            r, w = insn.regs_access()
        except capstone.CsError:
            r, w = insn.regs_read, insn.regs_write
        read, written = [insn.reg_name(x) for x in r], [insn.reg_name(x) for x in w]
    src = list(dict.fromkeys(n for n in (champsim_register(arch, x) for x in read) if n))
    dst = list(dict.fromkeys(n for n in (champsim_register(arch, x) for x in written) if n))
    others = [x for x in src if x not in (SP, FLAGS, IP)]
    if cls == N.NOT_BRANCH:
        return src[:4], [x for x in dst if x != IP][:2]
    if cls == N.COND:
        flags = [FLAGS] if FLAGS in src or not others else []
        return ([IP, *flags, *others])[:4], [IP]
    if cls == N.JUMP:
        return [IP], [IP]
    if cls == N.JUMP_INDIRECT:
        return others[:4], [IP]
    if cls == N.CALL:
        return [SP, IP], [SP, IP]
    if cls == N.CALL_INDIRECT:
        return ([SP, IP, *others])[:4], [SP, IP]
    if cls == N.RETURN:
        return ([SP, *others])[:4], [SP, IP]
    return [SP, FLAGS], [IP]   # exception returns and the like: ChampSim's "other" branch


def pack(cls: int, src: list[int], dst: list[int]) -> int:
    """core.h's info word: destination bytes 0-1, source bytes 2-5, class in bits 48-55."""
    info = cls << 48
    for i, r in enumerate(dst[:2]):
        info |= r << (8 * i)
    for i, r in enumerate(src[:4]):
        info |= r << (8 * (i + 2))
    return info


class Decoder:
    """Instruction facts for a trace's addresses, from the ELF files' code (decoded once per address)."""

    def __init__(self, symbols: Symbols, warn: Warn) -> None:
        self.symbols = symbols
        self.warn = warn
        self.outside = 0
        self.names = [f.name for f in symbols.functions]
        self._starts = {f.start: i for i, f in sorted(enumerate(symbols.functions),
                                                      key=lambda e: (not e[1].is_function, -e[0]))}

    def describe(self, pcs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(info word, function index starting at the address or -1) per address."""
        info = np.zeros(len(pcs), np.uint64)
        func = np.full(len(pcs), -1, np.int32)
        for i, pc in enumerate(pcs.tolist()):
            func[i] = self._starts.get(pc, -1)
            code = self.symbols.code_at(pc)
            if code is None:
                self.outside += 1
                continue
            data, (arch, mode) = code
            insn = next(self.symbols.decoder(arch, mode, True).disasm(data, pc, 1), None)
            if insn is None:
                self.outside += 1
                continue
            if arch == capstone.CS_ARCH_RISCV:
                cls = riscv_class(data, not mode & capstone.CS_MODE_RISCV64)
            else:
                cls = capstone_class(insn)
            src, dst = champsim_registers(arch, insn, cls)
            info[i] = pack(cls, src, dst)
        return info, func

    def report(self, what: str) -> None:
        """One warning for the addresses no ELF file could decode."""
        if self.outside:
            self.warn(f"{self.outside} instruction addresses are outside the code of the ELF files (or do not "
                      f"decode): {what}")


def decoder_for(fmt: str, source: Source, opts: Options, warn: Warn) -> Decoder:
    """The decoder of the guest's code that --elf names (a format that decodes instructions needs it)."""
    if not opts.elf:
        raise UserError(f"{fmt} decodes the executed instructions: give the guest's ELF file(s) with --elf")
    if source.arch is None:
        raise UserError(f"{fmt}: the guest's architecture is unknown: give it with --arch")
    return Decoder(Symbols(opts.elf, source.arch, lambda m: warn(f"warning: {m}"), lines=False), warn)
