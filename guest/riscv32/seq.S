/* seq: an exact, known sequence of loads and stores between START and STOP (see guest/README.md). RV32 has no
 * 8-byte integer access: the 8-byte store and load are the D extension's fsd / fld. */
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
    li      t2, 0x04030201      /* value register (low half) */
    la      t4, seq_value
    fld     ft0, 0(t4)          /* ft0 = 0x0807060504030201 */
    MEMTAP_START
seq_begin:
seq_st1: sb     t2, 0(t0)
seq_st2: sh     t2, 2(t0)
seq_st4: sw     t2, 4(t0)
seq_st8: fsd    ft0, 8(t0)
seq_ld1: lbu    t3, 0(t0)
seq_ld2: lhu    t3, 2(t0)
seq_ld4: lw     t3, 4(t0)
seq_ld8: fld    ft1, 8(t0)
seq_mark: MEMTAP_MARK(0x1234)
seq_loop:
    addi    t1, t1, -1
    bnez    t1, seq_loop
seq_end: MEMTAP_STOP
    /* return 0 if the 4- and 8-byte loads read back the stored values */
    feq.d   a0, ft0, ft1
    xori    a0, a0, 1
    sub     t3, t3, t2
    snez    t3, t3
    or      a0, a0, t3
    ret

    .section .rodata
    .balign 8
seq_value:
    .dword 0x0807060504030201

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, @object
    .size mt_buf, 64
mt_buf:
    .zero 64
