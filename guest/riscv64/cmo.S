/* cmo: cache-maintenance, prefetch, atomic and LR/SC instructions at known labels between START and STOP, each
 * once, on the 64-byte-aligned `cmo_line` buffer (t0). Encodings are spelled out as words so any assembler takes
 * them: cbo.* (Zicbom/Zicboz), prefetch.* (Zicbop), fence.i. Returns 0 when the first sc succeeded and the
 * second failed. */
#include "memtap.h"

#define T0 5
#define CBO(imm) .word ((imm) << 20 | T0 << 15 | 2 << 12 | 0x0f)
#define PREFETCH(which, off) .word (((off) >> 5) << 25 | (which) << 20 | T0 << 15 | 6 << 12 | 0x13)

    .option norvc
    .text
    .globl main
    .globl cmo_begin, cmo_clean, cmo_flush, cmo_inval, cmo_zero, cmo_prefetch_r, cmo_prefetch_w
    .globl cmo_prefetch_i, cmo_fence_i, cmo_amoadd, cmo_lr, cmo_sc, cmo_sc_fail, cmo_end
    .balign 4
main:
    la      t0, cmo_line
    li      t2, 5
    MEMTAP_START
cmo_begin:
cmo_clean:      CBO(1)
cmo_flush:      CBO(2)
cmo_inval:      CBO(0)
cmo_zero:       CBO(4)
cmo_prefetch_r: PREFETCH(1, 64)
cmo_prefetch_w: PREFETCH(3, 128)
cmo_prefetch_i: PREFETCH(0, 0)
cmo_fence_i:    fence.i
cmo_amoadd:     amoadd.w t1, t2, (t0)
cmo_lr:         lr.w    t1, (t0)
cmo_sc:         sc.w    t3, t2, (t0)
cmo_sc_fail:    sc.w    t4, t2, (t0)
cmo_end: MEMTAP_STOP
    /* 0 iff t3 == 0 (first sc succeeded) and t4 != 0 (second failed: no reservation) */
    seqz    t4, t4
    or      a0, t3, t4
    ret

    .bss
    .balign 64
    .globl cmo_line
    .type cmo_line, @object
    .size cmo_line, 256
cmo_line:
    .zero 256
