/*
 * memtap x86_64 guest program "fault": one undefined instruction (ud2) inside the traced region, handled by
 * a #UD handler that steps over it (contract: guest/README.md).
 */
#include "memtap.h"

    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .type main, @function
main:
    subq $8, %rsp                           /* keep the stack 16-byte aligned across the call */
    movl $6, %edi                           /* #UD */
    leaq handler_begin(%rip), %rsi
    call mt_x86_set_gate                    /* start.S: IDT[6] = handler_begin */
    addq $8, %rsp
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
 * #UD handler: step over the 2-byte ud2 and return to fault_after.
 *
 * Memory accesses (x86 cannot return from an exception without them):
 *  - delivering #UD makes the CPU push a 5-quadword frame (SS, RSP, RFLAGS, CS, RIP; #UD has no error code)
 *    on the current stack (CPL 0, no stack switch, IST 0) and read IDT entry 6. QEMU does these inside the
 *    exception delivery, so a memtap trace does not show them;
 *  - handler_begin: `addq $2, (%rsp)`, the handler's only own memory access: one 8-byte load and one 8-byte
 *    store of the saved RIP;
 *  - handler_ret: iretq loads the 5 frame quadwords (RIP, CS, RFLAGS, RSP, SS at 0..32(%rsp)) and the GDT
 *    descriptors of CS (0x08) and SS (0x10); QEMU traces each descriptor as two 4-byte loads. So the trace
 *    shows 9 loads with pc = handler_ret.
 * Straight-line from handler_begin to the iretq at handler_ret; no other stack use.
 */
    .balign 16
    .type handler_begin, @function
handler_begin:
    addq $2, (%rsp)
handler_ret:
    iretq
    .size handler_begin, . - handler_begin
