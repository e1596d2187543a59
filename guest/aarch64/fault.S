/* fault: an undefined instruction and its exception handler inside the traced region (see guest/README.md). */
#include "memtap.h"
#include "vectors.h"

    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .balign 4
main:
    set_vectors fault_vectors, x15  /* keep the default vectors in x15 */
    mov     x12, #-1
    MEMTAP_START
fault_begin:
    mov     x10, #1
    add     x10, x10, #2
fault_insn:
    udf     #0                      /* permanently undefined */
fault_after:
    add     x10, x10, #3
    mov     x11, x10
fault_end: MEMTAP_STOP
    msr     vbar_el1, x15
    isb
    /* return 0 iff x11 == 6 and the exception class was 0 (unknown reason = undefined instruction) */
    cmp     x11, #6
    ccmp    x12, #0, #0, eq
    cset    w0, ne
    ret

/* Vector table: only "current EL with SP_ELx, synchronous" (offset 0x200) is ours; the other slots go to the
 * same slot of the default table (mt_vectors). */
    .balign 2048
fault_vectors:
    default_vector_slots 0, 4
    .balign 128
handler_begin:
    mrs     x12, esr_el1
    lsr     x12, x12, #26           /* exception class */
    mrs     x13, elr_el1
    add     x13, x13, #4            /* skip the faulting instruction */
    msr     elr_el1, x13
handler_ret:
    eret
    default_vector_slots 5, 16
