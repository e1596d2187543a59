/* priv: runs code in user mode, so the trace shows privilege changing with it (RISC-V only).
 *
 * In machine mode: open all of memory to U-mode with one PMP entry, then mret into `user_code` in U-mode. The user
 * code stores to mt_user_word and returns to M-mode with ecall; the trap handler resumes at `back_in_m`. Between
 * START and STOP: machine (priv_m_store), user (user_code .. user_ecall), machine again (handler, back_in_m). */
#include "memtap.h"

    .option norvc
    .text
    .globl main, priv_m_store, user_code, user_store, user_ecall, priv_handler, back_in_m, mt_user_word
    .balign 4
main:
    li      t0, -1
    csrw    pmpaddr0, t0
    li      t0, 0x1f            /* NAPOT, R, W, X: all addresses */
    csrw    pmpcfg0, t0
    la      t0, priv_handler
    csrrw   t6, mtvec, t0
    la      t1, mt_user_word
    li      t2, 0x55
    li      t0, 0x1800          /* mstatus.MPP = U (clear both bits) */
    csrc    mstatus, t0
    la      t0, user_code
    csrw    mepc, t0
    MEMTAP_START
priv_m_store:
    sw      t2, 0(t1)
    mret
    .balign 4
user_code:
    addi    t2, t2, 1
user_store:
    sw      t2, 4(t1)
user_ecall:
    ecall
    .balign 4
priv_handler:
    la      t0, back_in_m
    csrw    mepc, t0
    li      t0, 0x1800          /* MPP = M */
    csrs    mstatus, t0
    mret
back_in_m:
    sw      t2, 8(t1)
    MEMTAP_STOP
    csrw    mtvec, t6
    li      a0, 0
    ret

    .data
    .balign 8
mt_user_word:
    .dword 0, 0
