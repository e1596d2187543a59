/* seq: an exact, known sequence of loads and stores between START and STOP (see guest/README.md). Assembles as
 * A32 (arm) or Thumb-2 (arm-thumb, which includes this file). The 8-byte store and load are VFP vstr / vldr. */
#include "memtap.h"

    .syntax unified
    .fpu vfpv4
#ifdef __thumb__
    .thumb
#else
    .arm
#endif
    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8
    .globl seq_ld1, seq_ld2, seq_ld4, seq_ld8, seq_mark, seq_loop, seq_end
    .type main, %function
    .balign 4
main:
    movw    r0, #:lower16:mt_buf
    movt    r0, #:upper16:mt_buf    /* r0 = &mt_buf */
    mov     r1, #10                 /* loop counter */
    movw    r2, #0x0201
    movt    r2, #0x0403             /* value register (low half) */
    ldr     r3, =seq_value
    vldr    d0, [r3]                /* d0 = 0x0807060504030201 */
    MEMTAP_START
seq_begin:
seq_st1: strb   r2, [r0]
seq_st2: strh   r2, [r0, #2]
seq_st4: str    r2, [r0, #4]
seq_st8: vstr   d0, [r0, #8]
seq_ld1: ldrb   r3, [r0]
seq_ld2: ldrh   r3, [r0, #2]
seq_ld4: ldr    r3, [r0, #4]
seq_ld8: vldr   d1, [r0, #8]
seq_mark: MEMTAP_MARK(0x1234)
seq_loop:
    subs    r1, r1, #1
    bne     seq_loop
seq_end: MEMTAP_STOP
    /* return 0 if the 4- and 8-byte loads read back the stored values */
    mov     r0, #0
    cmp     r3, r2
    it      ne
    movne   r0, #1
    vmov    r1, r12, d1             /* r1 = low, r12 = high word read back */
    cmp     r1, r2
    it      ne
    movne   r0, #1
    ldr     r3, =0x08070605
    cmp     r12, r3
    it      ne
    movne   r0, #1
    bx      lr
    .ltorg

    .section .rodata
    .balign 8
seq_value:
    .quad 0x0807060504030201

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, %object
    .size mt_buf, 64
mt_buf:
    .zero 64
