/* seq: an exact, known sequence of loads and stores between START and STOP (see guest/README.md). */
#include "memtap.h"

    .option norvc               /* every instruction 4 bytes: predictable addresses */
    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8
    .globl seq_ld1, seq_ld2, seq_ld4, seq_ld8, seq_mark, seq_loop, seq_end
    .balign 4
main:
    la      t0, mt_buf          /* t0 = &mt_buf */
    li      t1, 10              /* loop counter */
    li      t2, 0x0807060504030201
    MEMTAP_START
seq_begin:
seq_st1: sb     t2, 0(t0)
seq_st2: sh     t2, 2(t0)
seq_st4: sw     t2, 4(t0)
seq_st8: sd     t2, 8(t0)
seq_ld1: lbu    t3, 0(t0)
seq_ld2: lhu    t3, 2(t0)
seq_ld4: lwu    t3, 4(t0)
seq_ld8: ld     t3, 8(t0)
seq_mark: MEMTAP_MARK(0x1234)
seq_loop:
    addi    t1, t1, -1
    bnez    t1, seq_loop
seq_end: MEMTAP_STOP
    /* return 0 if the last load read back the stored value */
    sub     a0, t3, t2
    snez    a0, a0
    ret

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, @object
    .size mt_buf, 64
mt_buf:
    .zero 64
