/* priv: runs code at EL0, so the trace shows privilege changing with it.
 *
 * At EL1: point VBAR_EL1 at a table whose "lower EL, AArch64, synchronous" entry (offset 0x400) branches to
 * `priv_handler`, then eret into `user_code` at EL0 (SPSR_EL1 = EL0t with DAIF masked, ELR_EL1 = user_code). With
 * the MMU off QEMU checks no permissions, so EL0 may fetch, load and store anywhere. The user code stores to
 * mt_user_word and comes back with `svc #0`; the handler keeps ESR_EL1 and continues at EL1 (on SP_EL1, the stack
 * main runs on) at `back_in_m`. Between START and STOP: EL1 (priv_m_store), EL0 (user_code .. user_ecall), EL1 again
 * (priv_vector, priv_handler, back_in_m). Returns 0 iff the exception class was SVC64 (0x15) and the three words
 * read back 0x55, 0x56, 0x56. */
#include "memtap.h"
#include "vectors.h"

#define SPSR_EL0T 0x3c0             /* M = EL0t, D, A, I, F masked */
#define EC_SVC64 0x15

    .text
    .globl main, priv_m_store, user_code, user_store, user_ecall, priv_handler, back_in_m, priv_vector
    .globl mt_user_word
    .balign 4
main:
    set_vectors priv_vectors, x15   /* keep the default vectors in x15 */
    mov     x9, #SPSR_EL0T
    msr     spsr_el1, x9
    adr     x9, user_code
    msr     elr_el1, x9
    isb
    adrp    x1, mt_user_word
    add     x1, x1, :lo12:mt_user_word
    mov     w2, #0x55
    mov     x12, #-1
    MEMTAP_START
priv_m_store:
    str     w2, [x1]
    eret                            /* PSTATE = SPSR_EL1 (EL0t), pc = user_code */
user_code:
    add     w2, w2, #1
user_store:
    str     w2, [x1, #4]
user_ecall:
    svc     #0
priv_handler:                       /* EL1 from here on: ELR_EL1 = user_ecall + 4 */
    mrs     x12, esr_el1
back_in_m:
    str     w2, [x1, #8]
    MEMTAP_STOP
    msr     vbar_el1, x15
    isb
    lsr     x12, x12, #26           /* exception class */
    cmp     x12, #EC_SVC64
    ldp     w3, w4, [x1]
    ldr     w5, [x1, #8]
    sub     w3, w3, #0x55
    sub     w4, w4, #0x56
    sub     w5, w5, #0x56
    orr     w3, w3, w4
    orr     w3, w3, w5
    ccmp    w3, #0, #0, eq
    cset    w0, ne
    ret

/* Vector table: only "lower EL using AArch64, synchronous" (offset 0x400) is ours; the other slots go to the
 * same slot of the default table (mt_vectors). */
    .balign 2048
priv_vectors:
    default_vector_slots 0, 8
    .balign 128
priv_vector:
    b       priv_handler
    default_vector_slots 9, 16

    .data
    .balign 8
mt_user_word:
    .word 0, 0, 0, 0
