/*
 * memtap x86_64 guest program "irq": one hardware interrupt. The local APIC's timer (one-shot, vector 0x40) is
 * armed with interrupts off; between START and STOP, `sti; hlt` lets it in. Whether it fired before or during
 * the hlt, the CPU takes it with the hlt done, so it interrupts irq_after, the next instruction (the `sti`
 * shadow covers the hlt). irq_handler writes the APIC's EOI register and a flag, and returns. The legacy PICs are
 * masked, so no other interrupt comes.
 */
#include "memtap.h"

#define APIC 0xfee00000
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_DIV 0x3e0
#define VECTOR 0x40

    .text
    .globl main
    .globl irq_hlt, irq_after, irq_handler, irq_handler_ret
    .type main, @function
main:
    subq $8, %rsp
    movl $VECTOR, %edi
    leaq irq_handler(%rip), %rsi
    call mt_x86_set_gate                    /* start.S: IDT[0x40] = irq_handler */
    addq $8, %rsp
    movb $0xff, %al
    outb %al, $0x21                         /* mask the legacy PICs: the BIOS's PIT tick would come as vector 8 */
    outb %al, $0xa1
    movl $APIC, %ecx
    movl $0x1ff, APIC_SVR(%rcx)             /* APIC software-enabled, spurious vector 0xff */
    movl $0xb, APIC_TIMER_DIV(%rcx)         /* divide by 1 */
    movl $VECTOR, APIC_LVT_TIMER(%rcx)      /* one-shot, unmasked */
    movl $1000, APIC_TIMER_INIT(%rcx)       /* starts the count down */
    MEMTAP_START
    sti
irq_hlt:
    hlt
irq_after:
    cli
    MEMTAP_STOP
    movl irq_seen(%rip), %eax
    xorl $1, %eax                           /* 0 iff the handler ran */
    ret
    .size main, . - main

    .balign 16
    .type irq_handler, @function
irq_handler:
    movl $APIC, %ecx                        /* (an absolute 32-bit address would be sign-extended) */
    movl $0, APIC_EOI(%rcx)
    movl $1, irq_seen(%rip)
irq_handler_ret:
    iretq
    .size irq_handler, . - irq_handler

    .bss
    .balign 4
irq_seen:
    .skip 4
