/* cmo: PowerPC storage-control, e500 cache-locking and reservation instructions at known labels between START
 * and STOP, each once, on the 64-byte-aligned `cmo_line` buffer (EA = r4 + r5, r5 = 0, and r4 + r6 = +64).
 * Returns 0 when stwcx. succeeded. */
#include "memtap.h"

    .text
    .globl main
    .globl cmo_begin, cmo_dcbf, cmo_dcbst, cmo_dcbi, cmo_dcbz, cmo_dcbt, cmo_dcbtst, cmo_icbi
    .globl cmo_dcbtls, cmo_dcblc, cmo_lwarx, cmo_stwcx, cmo_end
    .balign 4
main:
    lis     %r4, cmo_line@ha
    addi    %r4, %r4, cmo_line@l
    li      %r5, 0
    li      %r6, 64
    li      %r7, 5
    MEMTAP_START
cmo_begin:
cmo_dcbf:   dcbf    %r4, %r5
cmo_dcbst:  dcbst   %r4, %r5
cmo_dcbi:   dcbi    %r4, %r5
cmo_dcbz:   dcbz    %r4, %r6
cmo_dcbt:   dcbt    %r4, %r6
cmo_dcbtst: dcbtst  %r4, %r5
cmo_icbi:   icbi    %r4, %r5
cmo_dcbtls: .long   0x7c44314c            /* dcbtls 2, r4, r6: lock into L2 (CT = 2) */
cmo_dcblc:  .long   0x7c04330c            /* dcblc 0, r4, r6: unlock from L1 (CT = 0) */
cmo_lwarx:  lwarx   %r8, 0, %r4
cmo_stwcx:  stwcx.  %r7, 0, %r4
cmo_end: MEMTAP_STOP
    mfcr    %r3
    rlwinm  %r3, %r3, 3, 31, 31         /* CR0[EQ]: 1 when the store-conditional succeeded */
    xori    %r3, %r3, 1
    blr

    .bss
    .balign 64
    .globl cmo_line
cmo_line:
    .space 256
