/* seq: an exact, known sequence of loads and stores between START and STOP (see guest/README.md). */
#include "memtap.h"

    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8
    .globl seq_ld1, seq_ld2, seq_ld4, seq_ld8, seq_mark, seq_loop, seq_end
    .balign 4
main:
    adrp    x0, mt_buf
    add     x0, x0, :lo12:mt_buf    /* x0 = &mt_buf */
    mov     x1, #10                 /* loop counter */
    movz    x2, #0x0201
    movk    x2, #0x0403, lsl #16
    movk    x2, #0x0605, lsl #32
    movk    x2, #0x0807, lsl #48
    MEMTAP_START
seq_begin:
seq_st1: strb   w2, [x0]
seq_st2: strh   w2, [x0, #2]
seq_st4: str    w2, [x0, #4]
seq_st8: str    x2, [x0, #8]
seq_ld1: ldrb   w3, [x0]
seq_ld2: ldrh   w3, [x0, #2]
seq_ld4: ldr    w3, [x0, #4]
seq_ld8: ldr    x3, [x0, #8]
seq_mark: MEMTAP_MARK(0x1234)
seq_loop:
    subs    x1, x1, #1
    b.ne    seq_loop
seq_end: MEMTAP_STOP
    /* return 0 if the last load read back the stored value */
    cmp     x3, x2
    cset    w0, ne
    ret

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, %object
    .size mt_buf, 64
mt_buf:
    .zero 64
