/* mmu: one virtual page mapped to a different physical page (see guest/README.md). Turns the EL1 MMU on (4 KiB
 * granule, 39-bit VA): 0-1 GiB device and 1-2 GiB normal memory identity-mapped with level-1 blocks, and the page
 * at mmu_virt (2 GiB) mapped through level 2 and 3 tables to mmu_phys. Between START and STOP: a 4-byte store and
 * load through mmu_virt + 8, then a 4-byte load of mmu_phys + 8 through its identity mapping, then a jump to
 * mmu_code through a second alias, mmu_code_virt = mmu_virt + 4 KiB (L3[1] -> mmu_code's page), and back (fetches
 * whose physical address differs from the virtual one). */
#include "memtap.h"

#define BLOCK_DEVICE ((1 << 10) | (0 << 2) | 1)            /* AF, AttrIndx 0, block */
#define BLOCK_NORMAL ((1 << 10) | (3 << 8) | (1 << 2) | 1) /* AF, inner shareable, AttrIndx 1, block */
#define PAGE_NORMAL ((1 << 10) | (3 << 8) | (1 << 2) | 3)  /* the same as a level-3 page */

    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys, mmu_code, mmu_code_virt, mmu_code_end
    .set mmu_virt, 0x80000000
    .set mmu_code_virt, mmu_virt + 4096
    .text
    .balign 4
main:
    adrp    x0, mmu_l1
    mov     x1, #BLOCK_DEVICE                       /* L1[0]: 0 .. 1 GiB, device */
    str     x1, [x0]
    mov     x1, #BLOCK_NORMAL
    orr     x1, x1, #0x40000000                     /* L1[1]: 1 .. 2 GiB, normal */
    str     x1, [x0, #8]
    adrp    x1, mmu_l2
    orr     x1, x1, #3
    str     x1, [x0, #16]                           /* L1[2] -> mmu_l2 */
    adrp    x2, mmu_l3
    orr     x1, x2, #3
    adrp    x3, mmu_l2
    str     x1, [x3]                                /* L2[0] -> mmu_l3 */
    adrp    x1, mmu_phys
    mov     x4, #PAGE_NORMAL
    orr     x1, x1, x4
    str     x1, [x2]                                /* L3[0] -> mmu_phys */
    adrp    x1, mmu_code
    orr     x1, x1, x4
    str     x1, [x2, #8]                            /* L3[1] -> mmu_code's page */
    dsb     sy
    mov     x1, #0xff00                             /* MAIR: attr0 device nGnRnE, attr1 normal write-back */
    msr     mair_el1, x1
    ldr     x1, =25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23)   /* TCR: T0SZ 25, cacheable inner
                                                    shareable walks, EPD1 */
    msr     tcr_el1, x1
    msr     ttbr0_el1, x0
    isb
    tlbi    vmalle1
    dsb     sy
    mrs     x1, sctlr_el1
    orr     x1, x1, #1                              /* M */
    msr     sctlr_el1, x1
    isb
    mov     x0, #mmu_virt
    adrp    x1, mmu_phys
    movz    w2, #0x1234
    movk    w2, #0x5a5a, lsl #16
    MEMTAP_START
mmu_st: str     w2, [x0, #8]
mmu_ld: ldr     w3, [x0, #8]
mmu_ld_phys: ldr w4, [x1, #8]
    adr     x6, mmu_code_back
    movz    x5, #(mmu_code_virt >> 16), lsl #16    /* no literal pool: no load between START and STOP */
    movk    x5, #(mmu_code_virt & 0xffff)
    br      x5
mmu_code_back:
    MEMTAP_STOP
    eor     w3, w3, w2
    eor     w4, w4, w2
    orr     w0, w3, w4                              /* 0 iff both loads saw the stored value */
    ret
    .ltorg

    .balign 4096
mmu_code:                                           /* runs at mmu_code_virt */
    add     x5, x5, #1
    br      x6
mmu_code_end:

    .bss
    .balign 4096
mmu_l1: .zero 4096
mmu_l2: .zero 4096
mmu_l3: .zero 4096
mmu_phys: .zero 4096
