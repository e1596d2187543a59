/* cmo: cache-maintenance, prefetch and atomic instructions at known labels between START and STOP, each once, on
 * the 64-byte-aligned `cmo_line` buffer (rax = cmo_line, rcx = 8). clflushopt and clwb need a CPU that has them:
 * the tests run this program with -cpu max. Returns 0. */
#include "memtap.h"

    .text
    .code64
    .globl main
    .globl cmo_begin, cmo_clflush, cmo_clflushopt, cmo_clwb, cmo_prefetcht0, cmo_prefetcht2, cmo_prefetchnta
    .globl cmo_prefetchw, cmo_wbinvd, cmo_lock_add, cmo_xchg, cmo_cmpxchg, cmo_end
main:
    movabs  $cmo_line, %rax
    mov     $8, %ecx
    MEMTAP_START
cmo_begin:
cmo_clflush:     clflush    (%rax)
cmo_clflushopt:  clflushopt 64(%rax)
cmo_clwb:        clwb       (%rax,%rcx,8)
cmo_prefetcht0:  prefetcht0 (%rax)
cmo_prefetcht2:  prefetcht2 0x40(%rax)
cmo_prefetchnta: prefetchnta cmo_line+128(%rip)
cmo_prefetchw:   prefetchw  (%rax)
cmo_wbinvd:      wbinvd
cmo_lock_add:    lock addl  $1, (%rax)
cmo_xchg:        xchg       %ecx, 8(%rax)
cmo_cmpxchg:     cmpxchg    %ecx, 16(%rax)
cmo_end: MEMTAP_STOP
    xor     %eax, %eax
    ret

    .bss
    .balign 64
    .globl cmo_line
    .type cmo_line, @object
    .size cmo_line, 256
cmo_line:
    .zero 256
