/* Physical addresses of instruction fetches. From QEMU 10.1 the plugin API translates a virtual address with the
 * vCPU's MMU (qemu_plugin_translate_vaddr, found at run time): each instruction is translated once, when QEMU
 * translates its block, which is exact for every execution because QEMU finds a block again only through the same
 * physical page (docs/recording.md). QEMU 10.0 cannot translate, but when the vCPU's MMU is off, as it is in most
 * firmware, the physical address is the virtual one. Whether it is off is read when QEMU translates a block; every
 * target keys its blocks on the translation regime, so the answer holds for every execution of the block. Where
 * neither applies the fetch's paddr is unknown. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "memtap_plugin.h"

enum mmu_arch { MMU_NONE, MMU_RISCV64, MMU_RISCV32, MMU_A64, MMU_X86, MMU_ARM };
static enum mmu_arch arch;
static struct qemu_plugin_register *reg;   /* satp, SCTLR (AArch64 EL1, Arm PL1) or cr0 */
static mt_translate_vaddr_fn translate;

void mt_mmu_init(void)
{
    static const enum mmu_arch of[] = {
        [MT_TARGET_NONE] = MMU_NONE, [MT_TARGET_X86_64] = MMU_X86, [MT_TARGET_I386] = MMU_X86,
        [MT_TARGET_AARCH64] = MMU_A64, [MT_TARGET_ARM] = MMU_ARM, [MT_TARGET_RISCV64] = MMU_RISCV64,
        [MT_TARGET_RISCV32] = MMU_RISCV32, [MT_TARGET_PPC] = MMU_NONE,
    };
    arch = of[mt_target];
    translate = (mt_translate_vaddr_fn)dlsym(RTLD_DEFAULT, MT_QEMU_TRANSLATE_VADDR);
}

bool mt_mmu_translates(void)
{
    return translate != NULL;
}

bool mt_mmu_translate(uint64_t vaddr, uint64_t *paddr)
{
    return translate && translate(vaddr, paddr);
}

void mt_mmu_vcpu_init(void)
{
    static const char *const names[] = {[MMU_RISCV64] = "satp", [MMU_RISCV32] = "satp", [MMU_A64] = "SCTLR",
                                        [MMU_X86] = "cr0", [MMU_ARM] = "SCTLR"};
    if (arch != MMU_NONE && !reg) {
        mt_regs_find(&names[arch], 1, &reg);   /* SCTLR: SCTLR_EL1 from QEMU 10.1 (regs.c) */
    }
}

/* True when the translating vCPU fetches with address translation off (physical address = virtual address). */
bool mt_mmu_fetch_untranslated(uint8_t priv)
{
    uint64_t v;
    switch (arch) {
    case MMU_RISCV64:
    case MMU_RISCV32:
        if (priv == MEMTAP_PRIV_MACHINE) {
            return true;                        /* M-mode fetches are never translated */
        }
        return mt_regs_read(reg, &v) && (arch == MMU_RISCV64 ? v >> 60 : (v >> 31) & 1) == 0;   /* satp.MODE = Bare */
    case MMU_A64:
        return (priv == MEMTAP_PRIV_USER || priv == MEMTAP_PRIV_SUPERVISOR) && mt_regs_read(reg, &v) &&
               !(v & 1);                /* SCTLR_EL1.M */
    case MMU_X86:
        return mt_regs_read(reg, &v) && !(v >> 31 & 1);  /* CR0.PG */
    case MMU_ARM:   /* the PL0/PL1 regime's SCTLR.M; Hyp mode (HSCTLR) is not read */
        return priv != MEMTAP_PRIV_HYPERVISOR && priv != MEMTAP_PRIV_UNKNOWN && mt_regs_read(reg, &v) && !(v & 1);
    default:
        return false;
    }
}
