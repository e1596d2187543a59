/* Translation-time decoding of what QEMU's plugin API does not say about an instruction: whether it is an atomic
 * read-modify-write or a load-linked/store-conditional, and whether it is a cache-maintenance or prefetch
 * instruction (which makes no memory access QEMU reports), with its operation, granularity, cache level and how
 * to compute its effective address from registers at run time. One decoder per instruction set; instructions it
 * does not recognise are plain (counted as such, never an error). The table of what maps to what is in
 * docs/recording.md. */
#include <string.h>

#include "memtap_plugin.h"

#define CMO(op, gran, level) ((uint8_t)((op) | (gran) << 4 | (level) << 6))

enum isa { ISA_NONE, ISA_X86_64, ISA_I386, ISA_A64, ISA_RISCV, ISA_ARM, ISA_PPC };
static enum isa isa;
MT_LOCAL _Atomic uint64_t mt_undecoded;
static __thread bool unknown;   /* set by a decoder that saw an encoding it cannot take apart */

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void ea_regs(struct mt_ea *ea, int base, int index, unsigned scale, int64_t disp)
{
    *ea = (struct mt_ea){.kind = MT_EA_REGS, .base = (int8_t)base, .index = (int8_t)index, .scale = (uint8_t)scale,
                         .disp = disp};
}

/* --- x86 (64- and 32-bit) --------------------------------------------------------------------------------- */

struct x86_prefixes {
    bool lock, opsize, rep, addr32;
    uint8_t rex, seg;
    size_t len;
};

static void x86_prefixes(const uint8_t *b, size_t size, bool long_mode, struct x86_prefixes *p)
{
    memset(p, 0, sizeof(*p));
    size_t i = 0;
    for (; i < size; i++) {
        switch (b[i]) {
        case 0xf0: p->lock = true; continue;
        case 0x66: p->opsize = true; continue;
        case 0xf2: case 0xf3: p->rep = true; continue;
        case 0x67: p->addr32 = true; continue;
        case 0x64: p->seg = 1; continue;   /* fs */
        case 0x65: p->seg = 2; continue;   /* gs */
        case 0x2e: case 0x36: case 0x3e: case 0x26: continue;
        default: break;
        }
        break;
    }
    if (long_mode && i < size && (b[i] & 0xf0) == 0x40) {
        p->rex = b[i++];
    }
    p->len = i;
}

/* Decodes a ModRM memory operand at b[0]; false for a register operand or a short encoding. */
static bool x86_modrm_ea(const uint8_t *b, size_t left, const struct x86_prefixes *p, bool long_mode,
                         unsigned *reg, struct mt_ea *ea)
{
    if (left < 1) {
        return false;
    }
    unsigned mod = b[0] >> 6, rm = b[0] & 7;
    *reg = (b[0] >> 3) & 7;
    if (mod == 3) {
        return false;
    }
    size_t i = 1;
    int base = (int)(rm | (p->rex & 1) << 3), index = -1;
    unsigned scale = 0;
    bool pc_rel = false;
    if (rm == 4) {
        if (left < 2) {
            return false;
        }
        uint8_t sib = b[i++];
        scale = sib >> 6;
        index = (int)(((sib >> 3) & 7) | (p->rex & 2) << 2);
        if (index == 4) {
            index = -1;   /* no index register (rsp cannot be one) */
        }
        base = (int)((sib & 7) | (p->rex & 1) << 3);
        if ((sib & 7) == 5 && mod == 0) {
            base = -1;
        }
    } else if (rm == 5 && mod == 0) {
        base = -1;
        pc_rel = long_mode;
    }
    int64_t disp = 0;
    if (mod == 1) {
        if (left < i + 1) {
            return false;
        }
        disp = (int8_t)b[i];
    } else if (mod == 2 || base == -1) {
        if (left < i + 4) {
            return false;
        }
        disp = (int32_t)le32(b + i);
    }
    ea_regs(ea, base, index, scale, disp);
    if (pc_rel) {
        ea->kind = MT_EA_PC_NEXT;   /* relative to the next instruction */
    }
    ea->seg = p->seg;
    ea->addr32 = !long_mode || p->addr32;
    return true;
}

static bool decode_x86(const uint8_t *b, size_t size, bool long_mode, struct mt_insn_class *c)
{
    struct x86_prefixes p;
    x86_prefixes(b, size, long_mode, &p);
    const uint8_t *op = b + p.len;
    size_t left = size - p.len;
    unsigned reg;
    struct mt_ea ea;
    if (left < 1) {
        return false;
    }
    if (op[0] == 0x86 || op[0] == 0x87) {          /* xchg r/m, r: locked whenever it names memory */
        if (x86_modrm_ea(op + 1, left - 1, &p, long_mode, &reg, &ea)) {
            c->flags |= MEMTAP_INSN_ATOMIC;
            return true;
        }
        return false;
    }
    if (op[0] != 0x0f || left < 2) {
        if (p.lock) {
            c->flags |= MEMTAP_INSN_ATOMIC;         /* lock add/or/and/xor/inc/dec/not/neg ... */
            return true;
        }
        return false;
    }
    uint8_t op2 = op[1];
    if (op2 == 0x08 || op2 == 0x09) {               /* invd; wbinvd (F3: wbnoinvd writes back, keeps) */
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = op2 == 0x08 ? CMO(MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_WHOLE, 0)
                 : p.rep     ? CMO(MEMTAP_CMO_CLEAN, MEMTAP_CMO_WHOLE, 0)
                             : CMO(MEMTAP_CMO_FLUSH, MEMTAP_CMO_WHOLE, 0);
        return true;
    }
    if (p.lock) {
        c->flags |= MEMTAP_INSN_ATOMIC;             /* lock cmpxchg, xadd, bts, cmpxchg8b/16b ... */
        return true;
    }
    if ((op2 == 0xae || op2 == 0x18 || op2 == 0x0d) && left < 3) {
        unknown = true;   /* the bytes end inside the instruction */
        return false;
    }
    if (!x86_modrm_ea(op + 2, left - 2, &p, long_mode, &reg, &ea)) {
        return false;
    }
    if (op2 == 0xae && (reg == 7 || (reg == 6 && p.opsize))) {   /* clflush; 66: clflushopt; 66 /6: clwb */
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = reg == 6 ? CMO(MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE, 0) : CMO(MEMTAP_CMO_FLUSH, MEMTAP_CMO_LINE, 0);
    } else if (op2 == 0x18 && reg <= 3) {           /* prefetchnta, prefetcht0, t1, t2 */
        static const uint8_t level[4] = {0, 1, 2, 3};
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO(MEMTAP_CMO_PREFETCH_READ, MEMTAP_CMO_LINE, level[reg]);
    } else if (op2 == 0x0d && reg <= 2) {           /* prefetch, prefetchw, prefetchwt1 */
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = reg == 0 ? CMO(MEMTAP_CMO_PREFETCH_READ, MEMTAP_CMO_LINE, 0)
                          : CMO(MEMTAP_CMO_PREFETCH_WRITE, MEMTAP_CMO_LINE, reg == 2 ? 2 : 0);
    } else {
        return false;
    }
    c->ea = ea;
    c->ea.next_pc_offset = (uint8_t)size;
    return true;
}

/* --- AArch64 ------------------------------------------------------------------------------------------------ */

#define A64_SP 31   /* register 31 as a base is sp */
#define A64_ZR 32   /* register 31 as an index or data register is xzr */

static bool decode_a64(uint32_t w, struct mt_insn_class *c)
{
    if ((w & 0x3f000000u) == 0x08000000u) {         /* load/store exclusive, load-acquire/store-release, CAS */
        bool o2 = w >> 23 & 1, o1 = w >> 21 & 1;
        if (!o2) {
            c->flags |= MEMTAP_INSN_EXCLUSIVE;      /* LDXR, STXR, LDAXR, STLXR, LDXP, STXP, ... */
            return true;
        }
        if (o1) {
            c->flags |= MEMTAP_INSN_ATOMIC;         /* CAS, CASP (ARMv8.1 LSE) */
            return true;
        }
        return false;                               /* LDAR, STLR: ordered, not atomic read-modify-write */
    }
    if ((w & 0x3f200c00u) == 0x38200000u) {         /* LSE atomic memory operations */
        bool o3 = w >> 15 & 1;
        unsigned opc = w >> 12 & 7;
        if (!(o3 && opc == 4)) {                    /* LDADD ... LDUMIN, SWP; not LDAPR */
            c->flags |= MEMTAP_INSN_ATOMIC;
            return true;
        }
        return false;
    }
    unsigned rt = w & 31, rn = w >> 5 & 31;
    if ((w & 0xfff8f000u) == 0xd5087000u) {         /* SYS #op1, C7, Cm, #op2, Xt: DC and IC */
        unsigned op1 = w >> 16 & 7, crm = w >> 8 & 15, op2 = w >> 5 & 7;
        static const struct {
            uint8_t op1, crm, op2, op, gran;
        } sys[] = {
            {0, 1, 0, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_WHOLE},  /* IC IALLUIS */
            {0, 5, 0, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_WHOLE},  /* IC IALLU */
            {3, 5, 1, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_LINE},   /* IC IVAU */
            {0, 6, 1, MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_LINE},          /* DC IVAC */
            {0, 6, 2, MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_SET_WAY},       /* DC ISW */
            {0, 10, 2, MEMTAP_CMO_CLEAN, MEMTAP_CMO_SET_WAY},           /* DC CSW */
            {0, 14, 2, MEMTAP_CMO_FLUSH, MEMTAP_CMO_SET_WAY},           /* DC CISW */
            {3, 4, 1, MEMTAP_CMO_ZERO, MEMTAP_CMO_LINE},                /* DC ZVA */
            {3, 10, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},              /* DC CVAC */
            {3, 11, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},              /* DC CVAU */
            {3, 12, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},              /* DC CVAP */
            {3, 13, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},              /* DC CVADP */
            {3, 14, 1, MEMTAP_CMO_FLUSH, MEMTAP_CMO_LINE},              /* DC CIVAC */
        };
        for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
            if (sys[i].op1 == op1 && sys[i].crm == crm && sys[i].op2 == op2) {
                c->flags |= MEMTAP_INSN_CMO;
                c->cmo = CMO(sys[i].op, sys[i].gran, 0);
                if (sys[i].gran == MEMTAP_CMO_LINE) {
                    ea_regs(&c->ea, rt == 31 ? A64_ZR : (int)rt, -1, 0, 0);
                } else if (sys[i].gran == MEMTAP_CMO_SET_WAY) {
                    ea_regs(&c->ea, rt == 31 ? A64_ZR : (int)rt, -1, 0, 0);
                    c->ea.kind = MT_EA_SET_WAY;   /* Xt holds set, way and level (bits 3:1) */
                }
                return true;
            }
        }
        return false;
    }
    /* PRFM: Rt is the prefetch operation: type (bits 4:3: load, instruction, store), target level (bits 2:1). */
    static const uint8_t prf_op[4] = {MEMTAP_CMO_PREFETCH_READ, MEMTAP_CMO_PREFETCH_INSN,
                                      MEMTAP_CMO_PREFETCH_WRITE, 0};
    uint8_t op = prf_op[rt >> 3 & 3], level = (uint8_t)((rt >> 1 & 3) + 1);
    bool prfm = true;
    if ((w & 0xffc00000u) == 0xf9800000u) {         /* PRFM (immediate): Xn|SP + imm12 * 8 */
        ea_regs(&c->ea, (int)rn, -1, 0, (int64_t)(w >> 10 & 0xfff) * 8);
    } else if ((w & 0xff000000u) == 0xd8000000u) {  /* PRFM (literal): pc + imm19 * 4 */
        int32_t imm19 = (int32_t)(w << 8) >> 13;
        ea_regs(&c->ea, -1, -1, 0, (int64_t)imm19 * 4);
        c->ea.kind = MT_EA_PC;
    } else if ((w & 0xffe00c00u) == 0xf8a00800u) {  /* PRFM (register): Xn|SP + extend(Xm) << (S ? 3 : 0) */
        unsigned rm = w >> 16 & 31, option = w >> 13 & 7;
        if (option != 3 && option != 7) {
            prfm = false;                           /* 32-bit extended index: not decoded */
            unknown = true;
        } else {
            ea_regs(&c->ea, (int)rn, rm == 31 ? A64_ZR : (int)rm, (w >> 12 & 1) ? 3 : 0, 0);
        }
    } else if ((w & 0xffe00c00u) == 0xf8800000u) {  /* PRFUM: Xn|SP + simm9 */
        ea_regs(&c->ea, (int)rn, -1, 0, (int32_t)(w << 11) >> 23);
    } else {
        prfm = false;
    }
    if (!prfm || !op) {
        c->ea.kind = MT_EA_NONE;
        return false;
    }
    c->flags |= MEMTAP_INSN_CMO;
    c->cmo = CMO(op, MEMTAP_CMO_LINE, level);
    return true;
}

/* --- RISC-V ------------------------------------------------------------------------------------------------- */

static bool decode_riscv(const uint8_t *b, size_t size, struct mt_insn_class *c)
{
    if (size != 4) {
        return false;                               /* compressed instructions: no atomics or cache operations */
    }
    uint32_t w = le32(b);
    unsigned opcode = w & 0x7f, rd = w >> 7 & 31, funct3 = w >> 12 & 7, rs1 = w >> 15 & 31;
    if (opcode == 0x2f && (funct3 == 2 || funct3 == 3)) {   /* A extension */
        unsigned funct5 = w >> 27;
        c->flags |= funct5 == 2 || funct5 == 3 ? MEMTAP_INSN_EXCLUSIVE : MEMTAP_INSN_ATOMIC;   /* LR, SC | AMO */
        return true;
    }
    if (opcode == 0x0f && funct3 == 1) {            /* fence.i */
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO(MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_WHOLE, 0);
        return true;
    }
    if (opcode == 0x0f && funct3 == 2 && rd == 0) { /* Zicbom, Zicboz: cbo.inval, cbo.clean, cbo.flush, cbo.zero */
        static const uint8_t ops[5] = {MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_CLEAN, MEMTAP_CMO_FLUSH, 0, MEMTAP_CMO_ZERO};
        unsigned imm = w >> 20;
        if (imm > 4 || !ops[imm]) {
            unknown = true;                         /* a reserved cbo encoding */
            return false;
        }
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO(ops[imm], MEMTAP_CMO_LINE, 0);
        ea_regs(&c->ea, (int)rs1, -1, 0, 0);
        return true;
    }
    if (opcode == 0x13 && funct3 == 6 && rd == 0) { /* Zicbop: prefetch.i, prefetch.r, prefetch.w (ori x0 hints) */
        unsigned which = w >> 20 & 31;
        uint8_t op = which == 0 ? MEMTAP_CMO_PREFETCH_INSN
                     : which == 1 ? MEMTAP_CMO_PREFETCH_READ
                     : which == 3 ? MEMTAP_CMO_PREFETCH_WRITE : 0;
        if (!op) {
            return false;
        }
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO(op, MEMTAP_CMO_LINE, 0);
        ea_regs(&c->ea, (int)rs1, -1, 0, (int64_t)(w >> 25) << 5);
        return true;
    }
    return false;
}

/* --- Arm (A32 and Thumb-2) --------------------------------------------------------------------------------- */

/* MCR p15, 0, Rt, c7, CRm, opc2: the ARMv7 cache operations (the same bits in A32, with a condition, and in T32,
 * whose first halfword is 0xee0x). Rt holds the address, or for set/way operations set, way and level. */
static bool decode_cp15(uint32_t w, struct mt_insn_class *c)
{
    if ((w & 0x0fff0f10u) != 0x0e070f10u) {     /* MCR, opc1 0, CRn c7, coprocessor 15 */
        return false;
    }
    unsigned crm = w & 15, opc2 = (w >> 5) & 7, rt = (w >> 12) & 15;
    static const struct {
        uint8_t crm, opc2, op, gran;
    } ops[] = {
        {1, 0, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_WHOLE},   /* ICIALLUIS */
        {5, 0, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_WHOLE},   /* ICIALLU */
        {5, 1, MEMTAP_CMO_ICACHE_INVALIDATE, MEMTAP_CMO_LINE},    /* ICIMVAU */
        {6, 1, MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_LINE},           /* DCIMVAC */
        {6, 2, MEMTAP_CMO_INVALIDATE, MEMTAP_CMO_SET_WAY},        /* DCISW */
        {10, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},               /* DCCMVAC */
        {10, 2, MEMTAP_CMO_CLEAN, MEMTAP_CMO_SET_WAY},            /* DCCSW */
        {11, 1, MEMTAP_CMO_CLEAN, MEMTAP_CMO_LINE},               /* DCCMVAU */
        {14, 1, MEMTAP_CMO_FLUSH, MEMTAP_CMO_LINE},               /* DCCIMVAC */
        {14, 2, MEMTAP_CMO_FLUSH, MEMTAP_CMO_SET_WAY},            /* DCCISW */
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].crm == crm && ops[i].opc2 == opc2) {
            c->flags |= MEMTAP_INSN_CMO;
            c->cmo = CMO(ops[i].op, ops[i].gran, 0);
            if (ops[i].gran != MEMTAP_CMO_WHOLE) {
                ea_regs(&c->ea, (int)rt, -1, 0, 0);
                c->ea.kind = ops[i].gran == MEMTAP_CMO_SET_WAY ? MT_EA_SET_WAY : MT_EA_REGS;
                c->ea.addr32 = 1;
            }
            return true;
        }
    }
    return false;
}

static bool decode_a32(uint32_t w, struct mt_insn_class *c)
{
    if ((w & 0x0f8002f0u) == 0x01800290u && ((w >> 10) & 3) == 3) {   /* LDREX, STREX, B/H/D forms (not LDA/STL) */
        c->flags |= MEMTAP_INSN_EXCLUSIVE;
        return true;
    }
    if ((w & 0x0fb00ff0u) == 0x01000090u) {   /* SWP, SWPB: atomic swap */
        c->flags |= MEMTAP_INSN_ATOMIC;
        return true;
    }
    if ((w & 0xff30f000u) == 0xf510f000u) {   /* PLD / PLDW [Rn, #+/-imm12] (R: bit 22 set for PLD) */
        int32_t imm = (int32_t)(w & 0xfff);
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO((w >> 22) & 1 ? MEMTAP_CMO_PREFETCH_READ : MEMTAP_CMO_PREFETCH_WRITE, MEMTAP_CMO_LINE, 0);
        ea_regs(&c->ea, (int)((w >> 16) & 15), -1, 0, (w >> 23) & 1 ? imm : -imm);
        c->ea.addr32 = 1;
        return true;
    }
    return decode_cp15(w, c);
}

static bool decode_t32(const uint8_t *b, size_t size, struct mt_insn_class *c)
{
    if (size != 4) {
        return false;                         /* 16-bit Thumb instructions: none of these */
    }
    uint32_t hw1 = (uint32_t)(b[0] | b[1] << 8), hw2 = (uint32_t)(b[2] | b[3] << 8), w = hw1 << 16 | hw2;
    unsigned op3 = (hw2 >> 4) & 15;
    if ((hw1 & 0xffe0u) == 0xe840u ||          /* STREX, LDREX */
        ((hw1 & 0xffe0u) == 0xe8c0u && (op3 == 4 || op3 == 5 || op3 == 7))) {   /* ...B, ...H, ...D */
        c->flags |= MEMTAP_INSN_EXCLUSIVE;
        return true;
    }
    if ((hw1 & 0xffd0u) == 0xf890u && (hw2 & 0xf000u) == 0xf000u) {   /* PLD / PLDW [Rn, #imm12] */
        c->flags |= MEMTAP_INSN_CMO;
        c->cmo = CMO((hw1 >> 5) & 1 ? MEMTAP_CMO_PREFETCH_WRITE : MEMTAP_CMO_PREFETCH_READ, MEMTAP_CMO_LINE, 0);
        ea_regs(&c->ea, (int)(hw1 & 15), -1, 0, hw2 & 0xfff);
        c->ea.addr32 = 1;
        return true;
    }
    return (hw1 & 0xfff0u) == 0xee00u && decode_cp15(w, c);
}

/* --- PowerPC (32-bit, big-endian): X-form storage-control and reservation instructions, EA = (RA|0) + RB -------- */

static bool decode_ppc(const uint8_t *b, size_t size, struct mt_insn_class *c)
{
    if (size != 4) {
        return false;
    }
    uint32_t w = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (w >> 26 != 31) {
        return false;
    }
    unsigned xo = (w >> 1) & 0x3ff, rt = (w >> 21) & 31, ra = (w >> 16) & 31, rb = (w >> 11) & 31;
    switch (xo) {
    case 20: case 84: case 52: case 116:      /* lwarx, ldarx, lbarx, lharx */
    case 150: case 214: case 694: case 726:   /* stwcx., stdcx., stbcx., sthcx. */
        c->flags |= MEMTAP_INSN_EXCLUSIVE;
        return true;
    default:
        break;
    }
    static const struct {
        uint16_t xo;
        uint8_t op;
        bool ct;                              /* the RT field is a cache target: CT 0 is L1, 2 is L2 */
    } ops[] = {
        {86, MEMTAP_CMO_FLUSH, false},        /* dcbf */
        {54, MEMTAP_CMO_CLEAN, false},        /* dcbst */
        {470, MEMTAP_CMO_INVALIDATE, false},  /* dcbi */
        {1014, MEMTAP_CMO_ZERO, false},       /* dcbz */
        {278, MEMTAP_CMO_PREFETCH_READ, false},    /* dcbt */
        {246, MEMTAP_CMO_PREFETCH_WRITE, false},   /* dcbtst */
        {982, MEMTAP_CMO_ICACHE_INVALIDATE, false},/* icbi */
        {166, MEMTAP_CMO_LOCK, true},         /* dcbtls */
        {134, MEMTAP_CMO_LOCK, true},         /* dcbtstls */
        {486, MEMTAP_CMO_LOCK, true},         /* icbtls */
        {390, MEMTAP_CMO_UNLOCK, true},       /* dcblc */
        {230, MEMTAP_CMO_UNLOCK, true},       /* icblc */
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].xo == xo) {
            unsigned level = ops[i].ct ? (rt == 0 ? 1 : rt == 2 ? 2 : 0) : 0;
            c->flags |= MEMTAP_INSN_CMO;
            c->cmo = CMO(ops[i].op, MEMTAP_CMO_LINE, level);
            ea_regs(&c->ea, ra ? (int)ra : -1, (int)rb, 0, 0);
            c->ea.addr32 = 1;
            return true;
        }
    }
    return false;
}

/* --- registers and entry points ----------------------------------------------------------------------------- */

static const char *const x86_64_regs[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
static const char *const i386_regs[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
static const char *const arm_regs[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10",
                                       "r11", "r12", "sp", "lr", "pc"};
static const char *const ppc_regs[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10",
                                       "r11", "r12", "r13", "r14", "r15", "r16", "r17", "r18", "r19", "r20",
                                       "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30",
                                       "r31"};
static const char *const riscv_regs[] = {"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0",
                                         "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6",
                                         "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};

#define MAX_REGS 33
static struct qemu_plugin_register *handles[MAX_REGS], *seg_base[3];

void mt_decode_init(void)
{
    static const enum isa of[] = {
        [MT_TARGET_NONE] = ISA_NONE, [MT_TARGET_X86_64] = ISA_X86_64, [MT_TARGET_I386] = ISA_I386,
        [MT_TARGET_AARCH64] = ISA_A64, [MT_TARGET_ARM] = ISA_ARM, [MT_TARGET_RISCV64] = ISA_RISCV,
        [MT_TARGET_RISCV32] = ISA_RISCV, [MT_TARGET_PPC] = ISA_PPC,
    };
    isa = of[mt_target];
}

static const char *reg_name(int r)
{
    static const char *const a64_regs[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10",
                                           "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20",
                                           "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30",
                                           "sp"};
    switch (isa) {
    case ISA_X86_64:
        return r >= 0 && r < 16 ? x86_64_regs[r] : NULL;
    case ISA_I386:
        return r >= 0 && r < 8 ? i386_regs[r] : NULL;
    case ISA_RISCV:
        return r >= 0 && r < 32 ? riscv_regs[r] : NULL;
    case ISA_A64:
        return r >= 0 && r <= A64_SP ? a64_regs[r] : NULL;
    case ISA_ARM:
        return r >= 0 && r < 16 ? arm_regs[r] : NULL;
    case ISA_PPC:
        return r >= 0 && r < 32 ? ppc_regs[r] : NULL;
    default:
        return NULL;
    }
}

/* Looks up the register handles once (they are the same for every vCPU). */
void mt_decode_vcpu_init(void)
{
    static bool done;
    if (done || isa == ISA_NONE) {
        return;
    }
    done = true;
    const char *names[MAX_REGS];
    for (int r = 0; r < MAX_REGS; r++) {
        names[r] = reg_name(r);
    }
    mt_regs_find(names, MAX_REGS, handles);
    static const char *const seg_names[3] = {NULL, "fs_base", "gs_base"};
    mt_regs_find(seg_names, 3, seg_base);
}

static bool reg_value(int r, uint64_t *v)
{
    if (r < 0 || (isa == ISA_A64 && r == A64_ZR) || (isa == ISA_RISCV && r == 0)) {
        *v = 0;
        return true;
    }
    return r < MAX_REGS && mt_regs_read(handles[r], v);
}

static bool decode_any(const uint8_t *bytes, size_t size, struct mt_insn_class *c)
{
    switch (isa) {
    case ISA_X86_64:
    case ISA_I386:
        return decode_x86(bytes, size, isa == ISA_X86_64, c);
    case ISA_A64:
        return size == 4 && decode_a64(le32(bytes), c);
    case ISA_RISCV:
        return decode_riscv(bytes, size, c);
    case ISA_ARM:
        return mt_arch_thumb() ? decode_t32(bytes, size, c) : size == 4 && decode_a32(le32(bytes), c);
    case ISA_PPC:
        return decode_ppc(bytes, size, c);
    default:
        return false;
    }
}

enum mt_decoded mt_decode(const uint8_t *bytes, size_t size, struct mt_insn_class *c)
{
    memset(c, 0, sizeof(*c));
    unknown = false;
    if (decode_any(bytes, size, c)) {
        return MT_DEC_SPECIAL;
    }
    memset(c, 0, sizeof(*c));
    return unknown ? MT_DEC_UNKNOWN : MT_DEC_PLAIN;
}

/* Computes a cache operation's effective address (or, for set/way operations, the register's value) from the
 * registers of the vCPU running the callback; false when a register cannot be read. */
bool mt_decode_ea(const struct mt_ea *ea, uint64_t pc, uint64_t *out)
{
    uint64_t base = 0, index = 0, seg = 0;
    switch (ea->kind) {
    case MT_EA_PC:
        *out = pc + (uint64_t)ea->disp;
        return true;
    case MT_EA_PC_NEXT:
        *out = pc + ea->next_pc_offset + (uint64_t)ea->disp;
        return true;
    case MT_EA_REGS:
    case MT_EA_SET_WAY:
        if (!reg_value(ea->base, &base) || !reg_value(ea->index, &index)) {
            return false;
        }
        if (ea->seg && !mt_regs_read(seg_base[ea->seg], &seg)) {
            return false;
        }
        *out = base + (index << ea->scale) + (uint64_t)ea->disp;
        if (ea->addr32) {
            *out &= 0xffffffffu;
        }
        *out += seg;
        return true;
    default:
        return false;
    }
}
