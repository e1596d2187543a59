/* seq: an exact, known sequence of loads and stores between START and STOP (see guest/README.md). The 8-byte
 * store and load are the SPE evstdd / evldd (one 8-byte access each; start.S turns SPE on). */
#include "memtap.h"

    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8
    .globl seq_ld1, seq_ld2, seq_ld4, seq_ld8, seq_mark, seq_loop, seq_end
    .balign 4
main:
    lis     %r3, mt_buf@ha
    addi    %r3, %r3, mt_buf@l        /* r3 = &mt_buf */
    li      %r4, 10                  /* loop counter */
    lis     %r5, 0x0403
    ori     %r5, %r5, 0x0201          /* value register (low half) */
    lis     %r7, 0x0807
    ori     %r7, %r7, 0x0605
    evmergelo %r6, %r7, %r5            /* r6 (64-bit SPE) = 0x0807060504030201 */
    MEMTAP_START
seq_begin:
seq_st1: stb    %r5, 0(%r3)
seq_st2: sth    %r5, 2(%r3)
seq_st4: stw    %r5, 4(%r3)
seq_st8: evstdd %r6, 8(%r3)
seq_ld1: lbz    %r9, 0(%r3)
seq_ld2: lhz    %r9, 2(%r3)
seq_ld4: lwz    %r9, 4(%r3)
seq_ld8: evldd  %r10, 8(%r3)
seq_mark: MEMTAP_MARK(0x1234)
seq_loop:
    addic.  %r4, %r4, -1
    bne     seq_loop
seq_end: MEMTAP_STOP
    /* return 0 if the 4- and 8-byte loads read back the stored values */
    evmergehi %r11, %r10, %r10         /* low word of r11 = high word of r10 */
    xor     %r9, %r9, %r5
    xor     %r10, %r10, %r5
    xor     %r11, %r11, %r7
    or      %r3, %r9, %r10
    or      %r3, %r3, %r11
    blr

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, @object
    .size mt_buf, 64
mt_buf:
    .zero 64
