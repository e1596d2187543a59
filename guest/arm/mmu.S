/*
 * memtap Arm guest program "mmu": one virtual page mapped to a different physical page (see guest/README.md).
 * Turns the MMU on with short-descriptor tables: every 1 MiB section identity-mapped (strongly ordered, full
 * access, domain 0 as manager), except the section at mmu_virt (2 GiB), whose coarse table maps its first 4 KiB
 * page to mmu_phys. Between START and STOP: a 4-byte store and load through mmu_virt + 8, then a 4-byte load of
 * mmu_phys + 8 through its identity mapping. The MMU is turned off again before main returns. Assembles as A32
 * (arm) or Thumb-2 (arm-thumb includes this file).
 */
#include "memtap.h"

    .syntax unified
#ifdef __thumb__
    .thumb
#else
    .arm
#endif
    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys
    .set mmu_virt, 0x80000000
    .text
    .type main, %function
    .balign 4
main:
    push    {r4-r6, lr}
    ldr     r4, =mmu_l1
    mov     r0, #0
1:  lsl     r1, r0, #20
    orr     r1, r1, #0xc00          /* AP[1:0] = 11: full access */
    orr     r1, r1, #2              /* a section */
    str     r1, [r4, r0, lsl #2]
    add     r0, r0, #1
    cmp     r0, #4096
    bne     1b
    ldr     r1, =mmu_l2
    orr     r1, r1, #1              /* a coarse page table, domain 0 */
    ldr     r2, =(mmu_virt >> 20) * 4
    str     r1, [r4, r2]
    ldr     r1, =mmu_phys
    orr     r1, r1, #0x32           /* a small page, AP[1:0] = 11 */
    ldr     r2, =mmu_l2
    str     r1, [r2]
    mov     r1, #3
    mcr     p15, 0, r1, c3, c0, 0   /* DACR: domain 0 manager */
    mov     r1, #0
    mcr     p15, 0, r1, c2, c0, 2   /* TTBCR: TTBR0 for every address */
    mcr     p15, 0, r4, c2, c0, 0   /* TTBR0 */
    mcr     p15, 0, r1, c8, c7, 0   /* TLBIALL */
    dsb
    isb
    mrc     p15, 0, r1, c1, c0, 0
    orr     r1, r1, #1              /* SCTLR.M */
    mcr     p15, 0, r1, c1, c0, 0
    isb
    ldr     r5, =mmu_virt
    ldr     r6, =mmu_phys
    ldr     r0, =0x5a5a1234
    MEMTAP_START
mmu_st:
    str     r0, [r5, #8]
mmu_ld:
    ldr     r1, [r5, #8]
mmu_ld_phys:
    ldr     r2, [r6, #8]
    MEMTAP_STOP
    mrc     p15, 0, r3, c1, c0, 0
    bic     r3, r3, #1
    mcr     p15, 0, r3, c1, c0, 0   /* MMU off again */
    isb
    eor     r1, r1, r0
    eor     r2, r2, r0
    orr     r0, r1, r2              /* 0 iff both loads saw the stored value */
    pop     {r4-r6, pc}
    .ltorg
    .size main, . - main

    .bss
    .balign 16384
mmu_l1:
    .skip 16384
    .balign 4096
mmu_phys:
    .skip 4096
    .balign 1024
mmu_l2:
    .skip 1024
