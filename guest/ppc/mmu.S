/* mmu: one virtual page mapped to a different physical page (see guest/README.md). e500 always translates; a
 * TLB1 entry (4 KiB, cached) maps mmu_virt to mmu_phys, which QEMU's initial 1:1 entry maps at its own address.
 * Between START and STOP: a 4-byte store and load through mmu_virt + 8, then a 4-byte load of mmu_phys + 8. */
#include "memtap.h"

#define MMU_TLB1_ENTRY 4
#define TSIZE_4K 2

    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys
    .set mmu_virt, 0x40000000
    .text
    .balign 4
main:
    stwu    %r1, -16(%r1)
    mflr    %r0
    stw     %r0, 20(%r1)
    li      %r3, MMU_TLB1_ENTRY
    lis     %r4, mmu_virt@h
    li      %r5, 0                      /* physical address, high word */
    lis     %r6, mmu_phys@ha
    addi    %r6, %r6, mmu_phys@l        /* low word */
    li      %r7, TSIZE_4K
    li      %r8, 0                      /* WIMGE: cached, coherent as the RAM mapping */
    bl      mt_ppc_tlb1_map
    lis     %r3, mmu_virt@h
    lis     %r4, mmu_phys@ha
    addi    %r4, %r4, mmu_phys@l
    lis     %r5, 0x5a5a
    ori     %r5, %r5, 0x1234
    MEMTAP_START
mmu_st: stw     %r5, 8(%r3)
mmu_ld: lwz     %r6, 8(%r3)
mmu_ld_phys: lwz %r7, 8(%r4)
    MEMTAP_STOP
    xor     %r6, %r6, %r5
    xor     %r7, %r7, %r5
    or      %r3, %r6, %r7               /* 0 iff both loads saw the stored value */
    lwz     %r0, 20(%r1)
    mtlr    %r0
    addi    %r1, %r1, 16
    blr

    .bss
    .balign 4096
mmu_phys: .zero 4096
