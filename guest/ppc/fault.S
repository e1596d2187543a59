/* fault: an illegal instruction and its program-exception handler inside the traced region (see guest/README.md).
 * The handler is IVOR6's target; it lives in .text.vectors, within 64 KiB of IVPR. */
#include "memtap.h"

#define SPR_ESR 62
#define SPR_IVOR6 406
#define ESR_PIL 0x08000000          /* illegal instruction */

    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .balign 4
main:
    mfspr   %r12, SPR_IVOR6          /* keep the default handler */
    li      %r0, handler_begin@l
    mtspr   SPR_IVOR6, %r0
    isync
    li      %r10, 0
    MEMTAP_START
fault_begin:
    li      %r6, 1
    addi    %r6, %r6, 2
fault_insn:
    .long   0                       /* primary opcode 0: illegal */
fault_after:
    addi    %r6, %r6, 3
    mr      %r7, %r6
fault_end: MEMTAP_STOP
    mtspr   SPR_IVOR6, %r12
    isync
    /* return 0 iff r7 == 6 and the exception was an illegal instruction */
    addi    %r3, %r7, -6
    lis     %r0, ESR_PIL@h
    xor     %r10, %r10, %r0
    or      %r3, %r3, %r10
    blr

    .section .text.vectors, "ax"
    .balign 16
handler_begin:
    mfspr   %r10, SPR_ESR
    mfsrr0  %r11
    addi    %r11, %r11, 4             /* skip the faulting instruction */
    mtsrr0  %r11
handler_ret:
    rfi
