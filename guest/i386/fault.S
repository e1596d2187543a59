/*
 * memtap i386 guest program "fault": one undefined instruction (ud2) inside the traced region, handled by a #UD
 * handler that steps over it (contract: guest/README.md).
 */
#include "memtap.h"

    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .type main, @function
main:
    pushl $handler_begin
    pushl $6                                /* #UD */
    call mt_x86_set_gate                    /* start.S: IDT[6] = handler_begin */
    addl $8, %esp
    MEMTAP_START
fault_begin:
    movl $1, %eax
    addl $2, %eax
fault_insn:
    ud2
fault_after:
    addl $3, %eax
    subl $6, %eax                           /* 1 + 2 + 3 - 6 = 0: main returns 0 only if fault_after ran */
fault_end:
    MEMTAP_STOP
    ret
    .size main, . - main

/*
 * #UD handler: step over the 2-byte ud2 and return to fault_after. Delivering #UD at CPL 0 pushes EFLAGS, CS
 * and EIP (no stack switch, no error code) inside QEMU's exception delivery, which a trace does not show; the
 * handler's own accesses are `addl $2, (%esp)` (a 4-byte load and store of the saved EIP) and iret's loads of
 * the frame and of the CS descriptor.
 */
    .balign 16
    .type handler_begin, @function
handler_begin:
    addl $2, (%esp)
handler_ret:
    iret
    .size handler_begin, . - handler_begin
