/*
 * memtap x86_64 guest program "mmu": one virtual page mapped to a different physical page (see guest/README.md).
 * start.S identity-maps the first 4 GiB with 2 MiB pages; this adds PDPT[4] -> mmu_pd -> mmu_pt -> mmu_phys, so
 * virtual mmu_virt (4 GiB) is physical mmu_phys. Between START and STOP: a 4-byte store and load through
 * mmu_virt + 8, then a 4-byte load of mmu_phys + 8 through its identity mapping, then a jump to mmu_code through
 * a second alias, mmu_code_virt = mmu_virt + 4 KiB (PT[1] -> mmu_code's page), and back (fetches whose physical
 * address differs from the virtual one; no stack, so no data accesses).
 */
#include "memtap.h"

    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys, mmu_code, mmu_code_virt, mmu_code_end
    .set mmu_virt, 0x100000000
    .set mmu_code_virt, mmu_virt + 4096
    .text
    .type main, @function
main:
    movq pml4(%rip), %rax
    andq $~0xfff, %rax                      /* the PDPT start.S made */
    leaq mmu_pd(%rip), %rcx
    orq $3, %rcx
    movq %rcx, 4 * 8(%rax)                  /* PDPT[4]: 4 GiB .. 5 GiB -> mmu_pd */
    leaq mmu_pt(%rip), %rcx
    orq $3, %rcx
    movq %rcx, mmu_pd(%rip)                 /* PD[0] -> mmu_pt */
    leaq mmu_phys(%rip), %rcx
    orq $3, %rcx
    movq %rcx, mmu_pt(%rip)                 /* PT[0] -> mmu_phys (present, writable) */
    leaq mmu_code(%rip), %rcx
    orq $1, %rcx
    movq %rcx, mmu_pt + 8(%rip)             /* PT[1] -> mmu_code's page (present) */
    movq %cr3, %rax
    movq %rax, %cr3                         /* flush the TLB */
    movabsq $mmu_virt, %rdi
    leaq mmu_phys(%rip), %rsi
    movl $0x5a5a1234, %eax
    MEMTAP_START
mmu_st:
    movl %eax, 8(%rdi)
mmu_ld:
    movl 8(%rdi), %ecx
mmu_ld_phys:
    movl 8(%rsi), %edx
    leaq mmu_code_back(%rip), %r9
    movabsq $mmu_code_virt, %r8
    jmp *%r8
mmu_code_back:
    MEMTAP_STOP
    xorl %eax, %ecx
    xorl %eax, %edx
    orl %edx, %ecx
    movl %ecx, %eax                         /* 0 iff both loads saw the stored value */
    ret
    .size main, . - main

    .balign 4096
mmu_code:                                   /* runs at mmu_code_virt */
    incq %r8
    jmp *%r9
mmu_code_end:

    .bss
    .balign 4096
mmu_pd:
    .skip 4096
mmu_pt:
    .skip 4096
mmu_phys:
    .skip 4096
