/* mmu: one virtual page mapped to a different physical page (see guest/README.md), for riscv64 (Sv39) and
 * riscv32 (Sv32, which includes this file). Machine mode builds the tables: identity maps of the devices and of RAM
 * (Sv39: gigapages 0-1 GiB and 2-3 GiB; Sv32: 4 MiB megapages for 0-4 MiB, the UART and 16 MiB of RAM from
 * 0x80000000) and the page at mmu_virt = 3 GiB -> mmu_phys through lower-level tables. It opens memory to S-mode
 * with one PMP entry and mrets into supervisor code, which makes, between START and STOP, a 4-byte store and load
 * through mmu_virt + 8 and a 4-byte load of mmu_phys + 8 through its identity mapping, then ecalls back to machine
 * mode. On the way, still between START and STOP, it jumps to mmu_code through a second alias, mmu_code_virt =
 * mmu_virt + 4 KiB, which maps mmu_code's page, and jumps back (fetches whose physical address differs from the
 * virtual one). */
#include "memtap.h"

#define PTE_LEAF 0xcf               /* D A X W R V */
#define PTE_TABLE 0x01

    .option norvc
    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys, mmu_code, mmu_code_virt, mmu_code_end
    .set mmu_virt, 0xc0000000
    .set mmu_code_virt, mmu_virt + 4096
    .text
    .balign 4
main:
#if __riscv_xlen == 64
    la      t0, mmu_root
    li      t1, PTE_LEAF                    /* root[0]: 0 .. 1 GiB (devices) */
    sd      t1, 0(t0)
    li      t1, (0x80000000 >> 2) | PTE_LEAF
    sd      t1, 16(t0)                      /* root[2]: 2 .. 3 GiB (RAM) */
    la      t2, mmu_l1
    srli    t1, t2, 2
    ori     t1, t1, PTE_TABLE
    sd      t1, 24(t0)                      /* root[3] -> mmu_l1 */
    la      t3, mmu_l0
    srli    t1, t3, 2
    ori     t1, t1, PTE_TABLE
    sd      t1, 0(t2)                       /* l1[0] -> mmu_l0 */
    la      t1, mmu_phys
    srli    t1, t1, 2
    ori     t1, t1, PTE_LEAF
    sd      t1, 0(t3)                       /* l0[0] -> mmu_phys */
    la      t1, mmu_code
    srli    t1, t1, 2
    ori     t1, t1, PTE_LEAF
    sd      t1, 8(t3)                       /* l0[1] -> mmu_code's page */
#else
    la      t0, mmu_root
    li      t1, PTE_LEAF
    sw      t1, 0(t0)                       /* root[0]: 0 .. 4 MiB (exit device) */
    li      t1, (0x10000000 >> 2) | PTE_LEAF
    sw      t1, (0x10000000 >> 22) * 4(t0)  /* root[0x40]: the UART's megapage */
    li      t1, (0x80000000 >> 2) | PTE_LEAF
    li      t2, 0x400000 >> 2               /* 4 MiB in PTE units */
    li      t3, (0x80000000 >> 22) * 4
    add     t3, t0, t3
    addi    t4, t3, 16
1:  sw      t1, 0(t3)                       /* root[0x200..0x203]: 16 MiB of RAM */
    add     t1, t1, t2
    addi    t3, t3, 4
    bne     t3, t4, 1b
    la      t3, mmu_l0
    srli    t1, t3, 2
    ori     t1, t1, PTE_TABLE
    li      t2, (0xc0000000 >> 22) * 4
    add     t2, t0, t2
    sw      t1, 0(t2)                       /* root[0x300] -> mmu_l0 */
    la      t1, mmu_phys
    srli    t1, t1, 2
    ori     t1, t1, PTE_LEAF
    sw      t1, 0(t3)                       /* l0[0] -> mmu_phys */
    la      t1, mmu_code
    srli    t1, t1, 2
    ori     t1, t1, PTE_LEAF
    sw      t1, 4(t3)                       /* l0[1] -> mmu_code's page */
#endif
    srli    t0, t0, 12
#if __riscv_xlen == 64
    li      t1, 8 << 60                     /* satp.MODE = Sv39 */
#else
    li      t1, 1 << 31                     /* satp.MODE = Sv32 */
#endif
    or      t0, t0, t1
    csrw    satp, t0
    sfence.vma
    li      t0, -1
    csrw    pmpaddr0, t0
    li      t0, 0x1f                        /* NAPOT, R, W, X: all addresses */
    csrw    pmpcfg0, t0
    la      t0, mmu_back
    csrrw   t6, mtvec, t0
    li      t0, 0x1800
    csrc    mstatus, t0
    li      t0, 0x0800                      /* mstatus.MPP = S */
    csrs    mstatus, t0
    la      t0, s_code
    csrw    mepc, t0
    li      t0, mmu_virt
    la      t1, mmu_phys
    li      t2, 0x5a5a1234
    mv      s1, ra
    mret
    .balign 4
s_code:
    MEMTAP_START
mmu_st: sw      t2, 8(t0)
mmu_ld: lw      t3, 8(t0)
mmu_ld_phys: lw t4, 8(t1)
    la      a2, mmu_code_back
    li      a1, mmu_code_virt
    jr      a1
mmu_code_back:
    MEMTAP_STOP
    ecall
    .balign 4
mmu_back:                               /* machine mode again */
    csrw    mtvec, t6
    csrw    satp, zero
    sfence.vma
    mv      ra, s1
    sub     t3, t3, t2
    sub     t4, t4, t2
    or      a0, t3, t4                      /* 0 iff both loads saw the stored value */
    ret

    .balign 4096
mmu_code:                               /* runs at mmu_code_virt */
    addi    a1, a1, 1
    jr      a2
mmu_code_end:

    .bss
    .balign 4096
mmu_root: .zero 4096
mmu_l1: .zero 4096                      /* Sv39 only */
mmu_l0: .zero 4096
mmu_phys: .zero 4096
