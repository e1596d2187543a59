/*
 * memtap x86_64 guest program "seq": an exact straight-line load/store sequence between START and STOP
 * (contract: guest/README.md). Between the markers only the eight labelled mov instructions touch memory.
 */
#include "memtap.h"

    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8, seq_ld1, seq_ld2, seq_ld4, seq_ld8
    .globl seq_mark, seq_loop, seq_end
    .type main, @function
main:
    leaq mt_buf(%rip), %rdi                 /* base register */
    movl $10, %ecx                          /* loop counter */
    movabsq $0x0807060504030201, %rax       /* value register */
    MEMTAP_START
seq_begin:
seq_st1:
    movb %al, 0(%rdi)
seq_st2:
    movw %ax, 2(%rdi)
seq_st4:
    movl %eax, 4(%rdi)
seq_st8:
    movq %rax, 8(%rdi)
seq_ld1:
    movzbl 0(%rdi), %edx
seq_ld2:
    movzwl 2(%rdi), %edx
seq_ld4:
    movl 4(%rdi), %edx
seq_ld8:
    movq 8(%rdi), %rdx
seq_mark:
    MEMTAP_MARK(0x1234)
seq_loop:
1:  decl %ecx
    jnz 1b                                  /* local target: lets the assembler use the 2-byte jnz */
seq_end:
    MEMTAP_STOP
    xorl %eax, %eax
    ret
    .size main, . - main

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, @object
mt_buf:
    .skip 64
    .size mt_buf, 64
