/* wide: one 16-byte store and one 16-byte load (q0) of a known value between START and STOP, for --values. */
#include "memtap.h"

    .text
    .globl main
    .globl wide_store, wide_load, wide_end
    .balign 4
main:
    adrp    x0, wide_buf
    add     x0, x0, :lo12:wide_buf
    ldr     x1, =0x1122334455667788
    ldr     x2, =0x99aabbccddeeff00
    fmov    d0, x1
    mov     v0.d[1], x2
    MEMTAP_START
wide_store: str     q0, [x0]
wide_load:  ldr     q1, [x0]
wide_end: MEMTAP_STOP
    mov     w0, #0
    ret

    .bss
    .balign 16
    .globl wide_buf
wide_buf:
    .zero 16
