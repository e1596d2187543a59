/*
 * memtap x86_64 guest program "gpfault": a load from a non-canonical address in the middle of a block raises
 * #GP; the handler drops the error code, steps over the 3-byte load and returns. x86 exposes no IDT register to
 * QEMU 10.0's plugins, so memtap sees this exception only because the block is left in its middle.
 */
#include "memtap.h"

    .text
    .globl main
    .globl gp_begin, gp_insn, gp_after, gp_end, gp_handler
    .type main, @function
main:
    subq $8, %rsp
    movl $13, %edi                          /* #GP */
    leaq gp_handler(%rip), %rsi
    call mt_x86_set_gate
    addq $8, %rsp
    movabsq $0x8000000000000000, %rcx       /* non-canonical */
    MEMTAP_START
gp_begin:
    movl $1, %eax
gp_insn:
    movq (%rcx), %rdx                       /* 48 8b 11: #GP(0) */
gp_after:
    addl $3, %eax
    subl $4, %eax                           /* 0 iff gp_after ran */
gp_end:
    MEMTAP_STOP
    ret
    .size main, . - main

    .balign 16
    .type gp_handler, @function
gp_handler:
    addq $8, %rsp                           /* the error code */
    addq $3, (%rsp)                         /* saved RIP: skip the faulting load */
    iretq
    .size gp_handler, . - gp_handler
