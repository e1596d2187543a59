/* Per-architecture knowledge: which register holds the privilege level and how to decode it, and the marker
 * encodings of guest/include/memtap.h. Adding an architecture means one entry in `arches` and, if its markers
 * differ, one decoder. */
#include <string.h>

#include "memtap_plugin.h"

typedef uint8_t (*priv_decode_fn)(uint64_t reg);
typedef bool (*marker_fn)(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg);

struct arch {
    const char *target;      /* QEMU target name */
    enum mt_target id;
    const char *reg;         /* register read for the privilege level */
    bool big_endian;         /* byte order of that register as QEMU returns it (the target's) */
    priv_decode_fn priv;
    marker_fn marker;
};

/* The privilege register as last read by this thread: read when a block is translated, before its markers are
 * decoded, so the Arm decoder knows the block's instruction set (CPSR.T). */
static __thread uint64_t tb_reg;

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 | (uint32_t)b[0] << 24;
}

static uint8_t priv_x86(uint64_t cs)
{
    return (cs & 3) == 3 ? MEMTAP_PRIV_USER : MEMTAP_PRIV_SUPERVISOR;
}

static uint8_t priv_aarch64(uint64_t cpsr)
{
    static const uint8_t el[4] = {MEMTAP_PRIV_USER, MEMTAP_PRIV_SUPERVISOR, MEMTAP_PRIV_HYPERVISOR,
                                  MEMTAP_PRIV_MACHINE};
    return el[(cpsr >> 2) & 3];
}

static uint8_t priv_riscv(uint64_t priv)
{
    switch (priv & 3) {
    case 0:
        return MEMTAP_PRIV_USER;
    case 1:
        return MEMTAP_PRIV_SUPERVISOR;
    case 3:
        return MEMTAP_PRIV_MACHINE;
    default:
        return MEMTAP_PRIV_UNKNOWN;
    }
}

/* CPSR.M: usr = user; svc, irq, fiq, abt, und, sys = supervisor; hyp = hypervisor; mon = machine. */
static uint8_t priv_arm(uint64_t cpsr)
{
    switch (cpsr & 0x1f) {
    case 0x10:
        return MEMTAP_PRIV_USER;
    case 0x11: case 0x12: case 0x13: case 0x17: case 0x1b: case 0x1f:
        return MEMTAP_PRIV_SUPERVISOR;
    case 0x1a:
        return MEMTAP_PRIV_HYPERVISOR;
    case 0x16:
        return MEMTAP_PRIV_MACHINE;
    default:
        return MEMTAP_PRIV_UNKNOWN;
    }
}

/* MSR[PR] (0x4000): problem state = user, else supervisor. */
static uint8_t priv_ppc(uint64_t msr)
{
    return msr & 0x4000 ? MEMTAP_PRIV_USER : MEMTAP_PRIV_SUPERVISOR;
}

/* nopl disp32(%eax): 0f 1f 80 <disp32>, disp32 = 0x4d54xxxx (control) or 0x4d4bxxxx (mark). */
static bool marker_x86(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg)
{
    if (size != 7 || b[0] != 0x0f || b[1] != 0x1f || b[2] != 0x80) {
        return false;
    }
    uint32_t d = le32(b + 3);
    if (d >> 16 == 0x4d54 && (d & 0xffff) <= 5) {
        *op = (int16_t)(d & 0xffff);
        return true;
    }
    if (d >> 16 == 0x4d4b) {
        *op = MT_MARKER_MARK;
        *arg = (uint16_t)d;
        return true;
    }
    return false;
}

/* movz xzr, #imm16, lsl #hw*16. */
static bool marker_aarch64(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg)
{
    if (size != 4) {
        return false;
    }
    uint32_t w = le32(b);
    if ((w & 0xff80001fu) != 0xd280001fu) {
        return false;
    }
    unsigned hw = (w >> 21) & 3, imm = (w >> 5) & 0xffff;
    if (hw == 1 && imm >= 0x4d50 && imm <= 0x4d55) {
        *op = (int16_t)(imm - 0x4d50);
        return true;
    }
    if (hw == 2) {
        *op = MT_MARKER_MARK;
        *arg = (uint16_t)imm;
        return true;
    }
    return false;
}

/* slti x0, rs1, imm12. */
static bool marker_riscv(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg)
{
    if (size != 4) {
        return false;
    }
    uint32_t w = le32(b);
    if ((w & 0x7fffu) != 0x2013u) {
        return false;
    }
    unsigned rs1 = (w >> 15) & 31, imm = w >> 20;
    if (rs1 == 0 && imm >= 0x4d0 && imm <= 0x4d5) {
        *op = (int16_t)(imm - 0x4d0);
        return true;
    }
    if (rs1 >= 16) {
        *op = MT_MARKER_MARK;
        *arg = (uint16_t)(((rs1 - 16) << 12) | imm);
        return true;
    }
    return false;
}

/* pli [rn, #+/-imm12]: A32 0xf4[5d]nfiii; Thumb-2 T1 0xf99n 0xfiii (+imm12), T2 0xf91n 0xfcii (-imm8). The block's
 * CPSR.T says which set; the two do not overlap as bytes, but a Thumb BL can look like the A32 form. */
static bool marker_arm(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg)
{
    if (size != 4) {
        return false;
    }
    uint32_t w;
    unsigned imm;
    if (tb_reg & 0x20) {
        w = (uint32_t)(b[0] | b[1] << 8) << 16 | (uint32_t)(b[2] | b[3] << 8);
        if (w >= 0xf910fc50u && w <= 0xf910fc55u) {
            *op = (int16_t)(w - 0xf910fc50u);
            return true;
        }
        if ((w & 0xfff0f000u) != 0xf990f000u) {
            return false;
        }
    } else {
        w = le32(b);
        imm = w & 0xfff;
        if ((w & 0xfffff000u) == 0xf450f000u && imm >= 0x4d0 && imm <= 0x4d5) {
            *op = (int16_t)(imm - 0x4d0);
            return true;
        }
        if ((w & 0xfff0f000u) != 0xf4d0f000u) {
            return false;
        }
    }
    *op = MT_MARKER_MARK;
    *arg = (uint16_t)(((w >> 16) & 0xf) << 12 | (w & 0xfff));
    return true;
}

/* twi 0, ra, si (never traps): control ra = r0, si = 0x4d50 + op; mark ra = r1, si = n. Big-endian. */
static bool marker_ppc(const uint8_t *b, size_t size, int16_t *op, uint16_t *arg)
{
    if (size != 4) {
        return false;
    }
    uint32_t w = be32(b);
    unsigned si = w & 0xffff;
    if (w >> 16 == 0x0c00 && si >= 0x4d50 && si <= 0x4d55) {
        *op = (int16_t)(si - 0x4d50);
        return true;
    }
    if (w >> 16 == 0x0c01) {
        *op = MT_MARKER_MARK;
        *arg = (uint16_t)si;
        return true;
    }
    return false;
}

static const struct arch arches[] = {
    {"x86_64", MT_TARGET_X86_64, "cs", false, priv_x86, marker_x86},
    {"i386", MT_TARGET_I386, "cs", false, priv_x86, marker_x86},
    {"aarch64", MT_TARGET_AARCH64, "cpsr", false, priv_aarch64, marker_aarch64},
    {"riscv64", MT_TARGET_RISCV64, "priv", false, priv_riscv, marker_riscv},
    {"riscv32", MT_TARGET_RISCV32, "priv", false, priv_riscv, marker_riscv},
    {"arm", MT_TARGET_ARM, "cpsr", false, priv_arm, marker_arm},
    {"ppc", MT_TARGET_PPC, "msr", true, priv_ppc, marker_ppc},
};

MT_LOCAL enum mt_target mt_target;

static const struct arch *arch;
static struct qemu_plugin_register *priv_reg;
static const char *priv_source = "none";

int mt_arch_init(const char *target)
{
    for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++) {
        if (strcmp(arches[i].target, target) == 0) {
            arch = &arches[i];
            mt_target = arch->id;
            mt_regs_big_endian = arch->big_endian;
            return 0;
        }
    }
    return -1;
}

/* Finds the privilege register once; a vCPU without it leaves privilege unknown. */
void mt_arch_vcpu_init(void)
{
    if (arch && !priv_reg) {
        mt_regs_find(&arch->reg, 1, &priv_reg);
        priv_source = priv_reg ? arch->reg : "none";
    }
}

/* The privilege level of the vCPU that is translating: constant over a block, because every QEMU target
 * keys its translation blocks on it. */
uint8_t mt_arch_priv(void)
{
    uint64_t v;
    if (!mt_regs_read(priv_reg, &v)) {
        return MEMTAP_PRIV_UNKNOWN;
    }
    tb_reg = v;
    return arch->priv(v);
}

/* Whether the block being translated is Thumb code (Arm CPSR.T, read by mt_arch_priv for this block). */
bool mt_arch_thumb(void)
{
    return mt_target == MT_TARGET_ARM && (tb_reg & 0x20);
}

const char *mt_arch_priv_source(void)
{
    return priv_source;
}

bool mt_arch_marker(const uint8_t *bytes, size_t size, int16_t *op, uint16_t *arg)
{
    return arch && arch->marker(bytes, size, op, arg);
}
