/*
 * memtap i386 guest program "seq": an exact straight-line load/store sequence between START and STOP
 * (contract: guest/README.md). The 8-byte store and load are the x87 fistpll / fildll (one 8-byte access each);
 * between the markers only the eight labelled instructions touch memory.
 */
#include "memtap.h"

    .text
    .globl main
    .globl seq_begin, seq_st1, seq_st2, seq_st4, seq_st8, seq_ld1, seq_ld2, seq_ld4, seq_ld8
    .globl seq_mark, seq_loop, seq_end
    .type main, @function
main:
    pushl %edi
    movl $mt_buf, %edi                      /* base register */
    movl $10, %ecx                          /* loop counter */
    movl $0x04030201, %eax                  /* value register (low half of the 8-byte value) */
    fildll seq_value                        /* st(0) = 0x0807060504030201 */
    MEMTAP_START
seq_begin:
seq_st1:
    movb %al, 0(%edi)
seq_st2:
    movw %ax, 2(%edi)
seq_st4:
    movl %eax, 4(%edi)
seq_st8:
    fistpll 8(%edi)
seq_ld1:
    movzbl 0(%edi), %edx
seq_ld2:
    movzwl 2(%edi), %edx
seq_ld4:
    movl 4(%edi), %edx
seq_ld8:
    fildll 8(%edi)
seq_mark:
    MEMTAP_MARK(0x1234)
seq_loop:
1:  decl %ecx
    jnz 1b
seq_end:
    MEMTAP_STOP
    /* return 0 iff the 8 bytes read back are the value stored */
    fistpll 16(%edi)
    movl 16(%edi), %eax
    movl 20(%edi), %edx
    xorl seq_value, %eax
    xorl seq_value + 4, %edx
    orl %edx, %eax
    popl %edi
    ret
    .size main, . - main

    .section .rodata
    .balign 8
seq_value:
    .quad 0x0807060504030201

    .bss
    .balign 64
    .globl mt_buf
    .type mt_buf, @object
mt_buf:
    .skip 64
    .size mt_buf, 64
