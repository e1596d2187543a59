/* priv: runs code in user mode (problem state, MSR[PR] = 1), so the trace shows privilege changing with it.
 *
 * In supervisor state: point IVOR8 (system call) at `priv_handler`, then return into `user_code` with rfi (SRR1 =
 * the current MSR | PR). QEMU's boot TLB1 entry (the first 64 MiB 1:1) already grants user read, write and execute
 * (`info tlb`: SRWX URWX), so no TLB entry is written. The user code stores to mt_user_word and comes back with
 * `sc`; the handler returns to supervisor state at `back_in_m` with rfi. Between START and STOP: supervisor
 * (priv_m_store), user (user_code .. user_ecall), supervisor again (priv_handler, back_in_m). All of it is in
 * .text.vectors: the handler must lie within 64 KiB of IVPR (it enters at IVPR | IVOR8), and the user code ends
 * right before it. Returns 0 iff the three words read back 0x55, 0x56, 0x56. */
#include "memtap.h"

#define SPR_IVOR8 408
#define MSR_PR 0x4000

    .section .text.vectors, "ax"
    .globl main, priv_m_store, user_code, user_store, user_ecall, priv_handler, back_in_m, mt_user_word
    .balign 16
main:
    mfspr   %r12, SPR_IVOR8          /* keep the default system-call vector */
    li      %r0, priv_handler@l      /* offset from IVPR */
    mtspr   SPR_IVOR8, %r0
    isync
    mfmsr   %r10                     /* supervisor MSR, restored by the handler */
    ori     %r0, %r10, MSR_PR
    mtsrr1  %r0
    lis     %r3, user_code@ha
    addi    %r3, %r3, user_code@l
    mtsrr0  %r3
    lis     %r4, mt_user_word@ha
    addi    %r4, %r4, mt_user_word@l
    li      %r5, 0x55
    MEMTAP_START
priv_m_store:
    stw     %r5, 0(%r4)
    rfi                              /* MSR = SRR1 (PR), pc = user_code */
    .balign 16
user_code:
    addi    %r5, %r5, 1
user_store:
    stw     %r5, 4(%r4)
    li      %r0, 0                   /* system call number (unused) */
user_ecall:
    sc
    .balign 16
priv_handler:                        /* IVOR8: SRR0 = user_ecall + 4 */
    lis     %r3, back_in_m@ha
    addi    %r3, %r3, back_in_m@l
    mtsrr0  %r3
    mtsrr1  %r10
    rfi
back_in_m:
    stw     %r5, 8(%r4)
    MEMTAP_STOP
    mtspr   SPR_IVOR8, %r12          /* the default vector again */
    isync
    lwz     %r6, 0(%r4)
    lwz     %r7, 4(%r4)
    lwz     %r8, 8(%r4)
    xori    %r6, %r6, 0x55
    xori    %r7, %r7, 0x56
    xori    %r8, %r8, 0x56
    or      %r3, %r6, %r7
    or      %r3, %r3, %r8
    blr

    .data
    .balign 8
mt_user_word:
    .long 0, 0, 0, 0
