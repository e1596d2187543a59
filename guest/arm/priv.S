/* priv: runs code in user mode, so the trace shows privilege changing with it.
 *
 * In SVC mode: point VBAR at a table whose SVC slot goes to `priv_handler`, then return into `user_code` in USR
 * mode with `subs pc, lr, #0` (SPSR = USR). The user code stores to mt_user_word and comes back with `svc #0`; the
 * handler continues in SVC mode at `back_in_m`. Between START and STOP: supervisor (priv_m_store), user
 * (user_code .. user_ecall), supervisor again (the SVC vector, priv_handler, back_in_m). Assembles as A32 (arm)
 * or Thumb-2 (arm-thumb includes this file; start.S sets SCTLR.TE there, so the vectors run in Thumb). */
#include "memtap.h"

    .syntax unified
#ifdef __thumb__
    .thumb
#define VECTOR(target) b.w target
#define USR_MODE 0x30               /* USR, Thumb state */
#else
    .arm
#define VECTOR(target) b target
#define USR_MODE 0x10               /* USR, ARM state */
#endif
    .text
    .globl main, priv_m_store, user_code, user_store, user_ecall, priv_handler, back_in_m, mt_user_word
    .type main, %function
    .balign 4
main:
    push    {r4, lr}
    mrc     p15, 0, r12, c12, c0, 0 /* keep the default vectors (VBAR) */
    ldr     r0, =priv_vectors
    mcr     p15, 0, r0, c12, c0, 0
    isb
    ldr     r1, =mt_user_word
    mov     r2, #0x55
    mov     r3, #USR_MODE
    msr     spsr_cxsf, r3
    ldr     lr, =user_code
    MEMTAP_START
priv_m_store:
    str     r2, [r1]
    subs    pc, lr, #0              /* exception return: CPSR = SPSR (USR), pc = user_code */
    .balign 4
user_code:
    add     r2, r2, #1
user_store:
    str     r2, [r1, #4]
user_ecall:
    svc     #0
    .balign 4
priv_handler:
    b       back_in_m               /* SVC mode from here on */
back_in_m:
    str     r2, [r1, #8]
    MEMTAP_STOP
    mcr     p15, 0, r12, c12, c0, 0
    isb
    mov     r0, #0
    pop     {r4, pc}
    .ltorg
    .size main, . - main

    .balign 32
priv_vectors:
    VECTOR(mt_vectors + 0)
    VECTOR(mt_vectors + 4)
    VECTOR(priv_handler)            /* slot 2: SVC */
    VECTOR(mt_vectors + 12)
    VECTOR(mt_vectors + 16)
    VECTOR(mt_vectors + 20)
    VECTOR(mt_vectors + 24)
    VECTOR(mt_vectors + 28)

    .data
    .balign 8
mt_user_word:
    .word 0, 0, 0, 0
