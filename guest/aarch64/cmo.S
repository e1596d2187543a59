/* cmo: cache-maintenance, prefetch, exclusive and LSE atomic instructions at known labels between START and STOP,
 * each once, on the 64-byte-aligned `cmo_line` buffer (x0). LSE (`ldadd`) needs an ARMv8.1 CPU: the tests run this
 * program with -cpu max. x1 holds a set/way value naming level 2 (bits 3:1 = 1). Returns 0 when the store-exclusive
 * succeeded. */
#include "memtap.h"

    .text
    .globl main
    .globl cmo_begin, cmo_civac, cmo_cvac, cmo_ivac, cmo_zva, cmo_cisw, cmo_ic_ivau, cmo_ic_iallu
    .globl cmo_prfm_ld, cmo_prfm_st, cmo_prfm_uxtw, cmo_ldxr, cmo_stxr, cmo_ldadd, cmo_end
    .balign 4
main:
    adrp    x0, cmo_line
    add     x0, x0, :lo12:cmo_line
    mov     x1, #(1 << 1)
    mov     w4, #3
    MEMTAP_START
cmo_begin:
cmo_civac:   dc      civac, x0
cmo_cvac:    dc      cvac, x0
cmo_ivac:    dc      ivac, x0
cmo_zva:     dc      zva, x0
cmo_cisw:    dc      cisw, x1
cmo_ic_ivau: ic      ivau, x0
cmo_ic_iallu: ic     iallu
cmo_prfm_ld: prfm    pldl2keep, [x0, #64]
cmo_prfm_st: prfm    pstl1strm, [x0, #128]
cmo_prfm_uxtw: prfm  pldl1keep, [x0, w1, uxtw]   /* a 32-bit extended index: memtap does not decode it */
cmo_ldxr:    ldxr    w2, [x0]
cmo_stxr:    stxr    w3, w2, [x0]
cmo_ldadd:   .word   0xb8240005          /* ldadd w4, w5, [x0] */
cmo_end: MEMTAP_STOP
    mov     w0, w3
    ret

    .bss
    .balign 64
    .globl cmo_line
    .type cmo_line, @object
    .size cmo_line, 256
cmo_line:
    .zero 256
