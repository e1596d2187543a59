/*
 * memtap i386 guest program "mmu": one virtual page mapped to a different physical page (see guest/README.md).
 * Turns paging on with a page directory that identity-maps the first GiB with 4 MiB pages (CR4.PSE) and maps the
 * 4 KiB page at mmu_virt (1 GiB) through mmu_pt to mmu_phys. Between START and STOP: a 4-byte store and load
 * through mmu_virt + 8, then a 4-byte load of mmu_phys + 8 through its identity mapping. Paging is turned off
 * again before main returns.
 */
#include "memtap.h"

    .globl main, mmu_virt, mmu_phys, mmu_st, mmu_ld, mmu_ld_phys
    .set mmu_virt, 0x40000000
    .text
    .code32
    .type main, @function
main:
    pushl %ebx
    pushl %esi
    pushl %edi
    leal mmu_pdir, %edi
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $22, %eax
    orl $0x83, %eax                         /* present, writable, 4 MiB */
    movl %eax, (%edi,%ecx,4)
    incl %ecx
    cmpl $256, %ecx
    jne 1b
    leal mmu_pt, %eax
    orl $3, %eax
    movl %eax, 256 * 4(%edi)                /* PDE[256]: 1 GiB .. +4 MiB -> mmu_pt */
    leal mmu_phys, %eax
    orl $3, %eax
    movl %eax, mmu_pt                       /* PTE[0] -> mmu_phys (present, writable) */
    movl %cr4, %eax
    orl $0x10, %eax                         /* CR4.PSE */
    movl %eax, %cr4
    movl %edi, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax                   /* CR0.PG */
    movl %eax, %cr0
    jmp 2f
2:  movl $mmu_virt, %edi
    leal mmu_phys, %esi
    movl $0x5a5a1234, %eax
    MEMTAP_START
mmu_st:
    movl %eax, 8(%edi)
mmu_ld:
    movl 8(%edi), %ecx
mmu_ld_phys:
    movl 8(%esi), %edx
    MEMTAP_STOP
    movl %cr0, %ebx
    andl $0x7fffffff, %ebx
    movl %ebx, %cr0                         /* paging off again */
    xorl %eax, %ecx
    xorl %eax, %edx
    orl %edx, %ecx
    movl %ecx, %eax                         /* 0 iff both loads saw the stored value */
    popl %edi
    popl %esi
    popl %ebx
    ret
    .size main, . - main

    .bss
    .balign 4096
mmu_pdir:
    .skip 4096
mmu_pt:
    .skip 4096
mmu_phys:
    .skip 4096
