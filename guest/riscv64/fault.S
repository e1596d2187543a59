/* fault: an illegal instruction and its trap handler inside the traced region (see guest/README.md). */
#include "memtap.h"

    .option norvc
    .text
    .globl main
    .globl fault_begin, fault_insn, fault_after, fault_end, handler_begin, handler_ret
    .balign 4
main:
    la      t0, handler_begin
    csrrw   t6, mtvec, t0       /* install handler (direct mode), keep the old vector in t6 */
    li      t4, -1
    MEMTAP_START
fault_begin:
    li      t1, 1
    addi    t1, t1, 2
fault_insn:
    csrrw   x0, cycle, x0       /* write to a read-only CSR: always an illegal-instruction exception */
fault_after:
    addi    t1, t1, 3
    addi    t2, t1, 0
fault_end: MEMTAP_STOP
    csrw    mtvec, t6
    /* return 0 iff t2 == 6 and the trap was an illegal instruction (mcause 2) */
    addi    a0, t2, -6
    addi    t4, t4, -2
    or      a0, a0, t4
    snez    a0, a0
    ret

    .balign 4
handler_begin:
    csrr    t4, mcause
    csrr    t5, mepc
    addi    t5, t5, 4           /* skip the 4-byte faulting instruction */
    csrw    mepc, t5
handler_ret:
    mret
