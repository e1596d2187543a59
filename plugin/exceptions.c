/* Exceptions and interrupts. From QEMU 10.2 the plugin API calls back when a vCPU takes an interrupt or an
 * exception, with the PC it came from and the handler's; hooks.c then records it at the handler's first block, and
 * the trap registers below still give the cause where the handler is a known vector entry. QEMU 10.0's API has no
 * such callback, so memtap recognises a trap by where the vCPU goes: a block that starts at the architecture's
 * trap vector, checked when QEMU translates it (RISC-V mtvec / stvec, AArch64 VBAR_EL1, Arm VBAR, PowerPC BookE
 * IVPR + IVORn), gets a callback that reads the cause and the interrupted PC from the trap registers (Arm keeps
 * no such PC: hooks.c then takes the last instruction the vCPU started). Where no vector is known (x86: QEMU does
 * not expose IDTR to plugins) only a block left in its middle is seen, by hooks.c, as an exception of unknown
 * cause. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "memtap_plugin.h"

enum exc_arch { EXC_NONE, EXC_RISCV64, EXC_RISCV32, EXC_A64, EXC_ARM, EXC_PPC };
enum { R_MTVEC, R_STVEC, R_MCAUSE, R_SCAUSE, R_MEPC, R_SEPC, R_VBAR, R_ESR, R_ELR, R_SRR0, R_IVPR, R_IVOR0,
       R_N = R_IVOR0 + 16 };
static enum exc_arch arch;
static struct qemu_plugin_register *reg[R_N];

void mt_exc_init(void)
{
    static const enum exc_arch of[] = {
        [MT_TARGET_NONE] = EXC_NONE, [MT_TARGET_X86_64] = EXC_NONE, [MT_TARGET_I386] = EXC_NONE,
        [MT_TARGET_AARCH64] = EXC_A64, [MT_TARGET_ARM] = EXC_ARM, [MT_TARGET_RISCV64] = EXC_RISCV64,
        [MT_TARGET_RISCV32] = EXC_RISCV32, [MT_TARGET_PPC] = EXC_PPC,
    };
    arch = of[mt_target];
}

void mt_exc_vcpu_init(void)
{
    static const char *const names[R_N] = {"mtvec", "stvec", "mcause", "scause", "mepc", "sepc", "VBAR",
                                           "ESR_EL1", "ELR_EL1", "srr0", "ivpr", "ivor0", "ivor1", "ivor2",
                                           "ivor3", "ivor4", "ivor5", "ivor6", "ivor7", "ivor8", "ivor9",
                                           "ivor10", "ivor11", "ivor12", "ivor13", "ivor14", "ivor15"};
    if (arch != EXC_NONE) {
        mt_regs_find(names, R_N, reg);   /* VBAR: VBAR_EL1 from QEMU 10.1 (regs.c) */
    }
}

bool mt_exc_vectors_known(void)
{
    return arch != EXC_NONE;
}

/* Whether a block starting at pc, translated at privilege priv, is a trap vector entry; *vec describes it. */
bool mt_exc_vector(uint64_t pc, uint8_t priv, struct mt_vector *vec)
{
    uint64_t base;
    if (arch == EXC_RISCV64 || arch == EXC_RISCV32) {
        bool m = priv == MEMTAP_PRIV_MACHINE;
        if ((!m && priv != MEMTAP_PRIV_SUPERVISOR) || !mt_regs_read(reg[m ? R_MTVEC : R_STVEC], &base)) {
            return false;
        }
        uint64_t mode = base & 3;
        base &= ~(uint64_t)3;
        /* Direct mode: every trap enters at base. Vectored: exceptions at base, interrupt i at base + 4i. */
        bool hit = pc == base || (mode == 1 && pc > base && pc < base + 4 * 64 && (pc - base) % 4 == 0);
        *vec = (struct mt_vector){.cause = reg[m ? R_MCAUSE : R_SCAUSE], .epc = reg[m ? R_MEPC : R_SEPC],
                                  .cls = MT_VEC_RISCV};
        return hit;
    }
    if (arch == EXC_A64) {
        /* 16 entries of 0x80 bytes: (current EL SP0, current EL SPx, lower EL A64, lower EL A32) x (synchronous,
         * IRQ, FIQ, SError). Only EL1's table is readable here. */
        if (priv != MEMTAP_PRIV_SUPERVISOR || !mt_regs_read(reg[R_VBAR], &base) || pc < base ||
            pc >= base + 0x800 || (pc - base) % 0x80) {
            return false;
        }
        unsigned kind = (unsigned)((pc - base) >> 7) & 3;
        *vec = (struct mt_vector){.cause = kind == 0 ? reg[R_ESR] : NULL, .epc = reg[R_ELR],
                                  .cls = kind == 0 ? MT_VEC_SYNC : MT_VEC_ASYNC, .async_kind = (uint8_t)kind};
        return true;
    }
    if (arch == EXC_ARM) {
        /* Eight 4-byte slots: 1 undefined, 2 SVC, 3 prefetch abort, 4 data abort, 6 IRQ, 7 FIQ. */
        if (priv == MEMTAP_PRIV_USER || !mt_regs_read(reg[R_VBAR], &base) || pc <= base || pc >= base + 32 ||
            (pc - base) % 4 || pc - base == 20) {
            return false;
        }
        unsigned slot = (unsigned)(pc - base) / 4;
        *vec = (struct mt_vector){.cls = MT_VEC_INDEX, .index = (uint8_t)slot, .interrupt = slot >= 6};
        return true;
    }
    if (arch == EXC_PPC && priv == MEMTAP_PRIV_SUPERVISOR && mt_regs_read(reg[R_IVPR], &base)) {
        /* BookE: interrupt n enters at IVPR[0:15] | IVORn[16:27]. SRR0 holds the return address of the
         * non-critical ones; 0, 1, 12 and 15 (critical, machine check, watchdog, debug) save it elsewhere. */
        for (unsigned n = 0; n < 16; n++) {
            uint64_t ivor;
            if (mt_regs_read(reg[R_IVOR0 + n], &ivor) && pc == ((base & 0xffff0000u) | (ivor & 0xfff0u))) {
                bool critical = n == 0 || n == 1 || n == 12 || n == 15;
                *vec = (struct mt_vector){.epc = critical ? NULL : reg[R_SRR0], .cls = MT_VEC_INDEX,
                                          .index = (uint8_t)n,
                                          .interrupt = n == 0 || n == 4 || (n >= 10 && n <= 12)};
                return true;
            }
        }
    }
    return false;
}

/* ESR_EL1 of an SVC, HVC or SMC (A64: EC 0x15-0x17, AArch32: 0x11-0x13) gives the length of that instruction
 * (IL, bit 25: 4 bytes, else a 16-bit Thumb svc), which ELR_EL1 points past; any other class: 0, ELR_EL1 is the
 * trapping instruction or, for an interrupt, the one it preceded. */
static uint64_t a64_call_len(uint64_t esr)
{
    unsigned ec = (unsigned)(esr >> 26) & 0x3f;
    if ((ec < 0x11 || ec > 0x13) && (ec < 0x15 || ec > 0x17)) {
        return 0;
    }
    return esr & (1u << 25) ? 4 : 2;
}

/* Reads the trap registers at the vector's first instruction: the interrupted PC, and the cause where the
 * architecture keeps one. Returns MEMTAP_EVF_EXC_* flags. */
uint8_t mt_exc_read(const struct mt_vector *vec, uint64_t *from, uint64_t *cause)
{
    uint8_t flags = 0;
    if (mt_regs_read(vec->epc, from)) {
        flags |= MEMTAP_EVF_EXC_FROM;
    }
    switch (vec->cls) {
    case MT_VEC_RISCV:
        if (mt_regs_read(vec->cause, cause)) {
            uint64_t top = arch == EXC_RISCV64 ? 1ull << 63 : 1ull << 31;
            flags |= MEMTAP_EVF_EXC_CAUSE | (*cause & top ? MEMTAP_EVF_EXC_INTERRUPT : 0);
        }
        break;
    case MT_VEC_SYNC:
        if (mt_regs_read(vec->cause, cause)) {
            flags |= MEMTAP_EVF_EXC_CAUSE;   /* ESR_EL1 */
            if (flags & MEMTAP_EVF_EXC_FROM) {
                *from -= a64_call_len(*cause);
            }
        }
        break;
    case MT_VEC_INDEX:
        *cause = vec->index;        /* Arm vector slot, PowerPC IVOR number */
        if (arch == EXC_PPC && vec->index == 8 && (flags & MEMTAP_EVF_EXC_FROM)) {
            *from -= 4;             /* sc: SRR0 is the instruction after it; report the sc itself */
        }
        flags |= MEMTAP_EVF_EXC_CAUSE | (vec->interrupt ? MEMTAP_EVF_EXC_INTERRUPT : 0);
        break;
    default:
        *cause = vec->async_kind;   /* 1 IRQ, 2 FIQ, 3 SError */
        flags |= MEMTAP_EVF_EXC_CAUSE | MEMTAP_EVF_EXC_INTERRUPT;
        break;
    }
    return flags;
}

/* Registers cb for interrupts and exceptions (not host calls such as semihosting, which return to the next
 * instruction) when the running QEMU has discontinuity callbacks. */
bool mt_exc_discon_register(qemu_plugin_id_t id, qemu_plugin_vcpu_discon_cb_t cb)
{
    mt_register_discon_fn reg_discon = (mt_register_discon_fn)dlsym(RTLD_DEFAULT, MT_QEMU_REGISTER_DISCON);
    if (reg_discon) {
        reg_discon(id, QEMU_PLUGIN_DISCON_INTERRUPT | QEMU_PLUGIN_DISCON_EXCEPTION, cb);
    }
    return reg_discon != NULL;
}

/* In a discontinuity callback: the cause, where `to` is a known trap vector entry. QEMU reports an AArch64 SVC,
 * HVC or SMC from the instruction after it (ELR_EL1): *from then becomes the call itself, as the registers give it
 * to QEMU 10.0's vector path. Returns MEMTAP_EVF_EXC_CAUSE and MEMTAP_EVF_EXC_INTERRUPT flags. */
uint8_t mt_exc_discon_cause(uint64_t to, uint64_t *from, uint64_t *cause)
{
    struct mt_vector vec;
    uint64_t call;
    if (arch == EXC_NONE || !mt_exc_vector(to, mt_arch_priv(), &vec)) {
        return 0;
    }
    uint8_t flags = mt_exc_read(&vec, &call, cause);
    if (vec.cls == MT_VEC_SYNC && (flags & MEMTAP_EVF_EXC_FROM) && (flags & MEMTAP_EVF_EXC_CAUSE) &&
        *from == call + a64_call_len(*cause)) {
        *from = call;
    }
    return flags & (MEMTAP_EVF_EXC_CAUSE | MEMTAP_EVF_EXC_INTERRUPT);
}
