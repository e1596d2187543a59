/* fault: an undefined instruction and its exception handler inside the traced region (see guest/README.md).
 * Assembles as A32 (arm) or Thumb-2 (arm-thumb, which includes this file; start.S sets SCTLR.TE there, so the
 * handler runs in Thumb state too). */
#include "memtap.h"

    .syntax unified
#ifdef __thumb__
    .thumb
#define VECTOR(target) b.w target
#else
    .arm
#define VECTOR(target) b target
#endif
    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .type main, %function
    .balign 4
main:
    mrc     p15, 0, r12, c12, c0, 0 /* keep the default vectors (VBAR) */
    ldr     r1, =fault_vectors
    mcr     p15, 0, r1, c12, c0, 0
    isb
    mov     r2, #0
    MEMTAP_START
fault_begin:
    mov     r1, #1
    add     r1, r1, #2
fault_insn:
    udf     #0                      /* permanently undefined */
fault_after:
    add     r1, r1, #3
    mov     r3, r1
fault_end: MEMTAP_STOP
    mcr     p15, 0, r12, c12, c0, 0
    isb
    /* return 0 iff r3 == 6 and the handler ran (r2 == 1) */
    sub     r0, r3, #6
    sub     r2, r2, #1
    orr     r0, r0, r2
    bx      lr
    .ltorg

/* Vector table: the undefined-instruction vector (slot 1) holds the handler itself, which runs on into slots 2
 * (SVC) and 3 (prefetch abort): neither happens during this program. The other slots go to the default vectors.
 * The undefined-instruction LR is the address after the udf in both instruction sets (A32: +4; Thumb: the 16-bit
 * udf, +2), so the handler returns to it with `subs pc, lr, #0` (which also restores CPSR from SPSR). */
    .balign 32
fault_vectors:
    VECTOR(mt_vectors + 0)
handler_begin:
    mov.w   r2, #1                  /* the handler ran (4 bytes in both sets: slot 1) */
handler_ret:
    subs    pc, lr, #0              /* slot 2 */
    .balign 4
    VECTOR(mt_vectors + 12)
    VECTOR(mt_vectors + 16)
    VECTOR(mt_vectors + 20)
    VECTOR(mt_vectors + 24)
    VECTOR(mt_vectors + 28)
