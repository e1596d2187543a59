/*
 * memtap i386 guest: boot code.
 *
 * QEMU (-M pc -kernel FILE) loads the ELF32 image with its multiboot v1 loader and enters _start in 32-bit
 * protected mode, paging off. We load our own flat GDT, set the stack, turn the x87 FPU on (CR0.EM = 0: seq.S
 * uses its 8-byte fild/fistp), zero .bss, install the IDT and call main(); its return value goes to mt_exit().
 * Everything runs at CPL 0, paging off. Secondary CPUs (mt_start_cpus in ../x86_64/platform.c) come in through
 * ap_trampoline, switch to protected mode and run mt_x86_ap_main on the stack mt_start_cpus gave them.
 */

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0
#define STACK_SIZE 0x10000
#define EXC_STUB_SIZE 16

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.boot, "ax"
    .code32
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $boot_stack_top, %esp
    call fpu_on

    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    call mt_x86_setup_idt
    call mt_x86_platform_init
    call main
    pushl %eax
    call mt_exit
2:  cli
    hlt
    jmp 2b
    .size _start, . - _start

/* CR0: MP (bit 1) and NE (bit 5) on, EM (bit 2) off; then reset the FPU. */
fpu_on:
    movl %cr0, %eax
    andl $~(1 << 2), %eax
    orl $((1 << 1) | (1 << 5)), %eax
    movl %eax, %cr0
    fninit
    ret

/* Secondary CPUs arrive here from the real-mode trampoline with CS = 0x08. */
ap_start32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    cld
    movl mt_x86_ap_stack, %esp      /* set by mt_start_cpus before it starts this CPU */
    lidt idt_ptr
    call fpu_on
    pushl mt_x86_ap_cpu
    call mt_x86_ap_main             /* runs the CPU's function, then parks; never returns */
3:  cli
    hlt
    jmp 3b

/*
 * Real-mode trampoline for secondary CPUs, copied below 1 MiB by mt_start_cpus (see ../x86_64/platform.c): the
 * CPU starts here with CS = MT_X86_TRAMPOLINE >> 4, IP = 0.
 */
    .code16
    .globl ap_trampoline, ap_trampoline_end
ap_trampoline:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_gdt_ptr - ap_trampoline)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $ap_start32
    .balign 8
ap_gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:
    .code32

/* IDT: vectors 0..31 -> report the exception and exit(1). fault.S replaces vector 6 (#UD) with its handler. */
    .text
    .globl mt_x86_setup_idt
    .type mt_x86_setup_idt, @function
mt_x86_setup_idt:
    pushl %ebx
    pushl %esi
    xorl %ebx, %ebx
    movl $exc_stubs, %esi
1:  pushl %esi
    pushl %ebx
    call mt_x86_set_gate
    addl $8, %esp
    addl $EXC_STUB_SIZE, %esi
    incl %ebx
    cmpl $32, %ebx
    jne 1b
    popl %esi
    popl %ebx
    lidt idt_ptr
    ret
    .size mt_x86_setup_idt, . - mt_x86_setup_idt

/* void mt_x86_set_gate(unsigned vector, void *handler): IDT entry `vector` (< 256) = 32-bit interrupt gate to
   `handler` (CS 0x08, DPL 0). fault.S installs its #UD handler with this. */
    .globl mt_x86_set_gate
    .type mt_x86_set_gate, @function
mt_x86_set_gate:
    movl 4(%esp), %ecx
    movl 8(%esp), %eax
    leal idt(, %ecx, 8), %ecx
    movw %ax, 0(%ecx)
    movw $0x08, 2(%ecx)
    movw $0x8e00, 4(%ecx)
    shrl $16, %eax
    movw %ax, 6(%ecx)
    ret
    .size mt_x86_set_gate, . - mt_x86_set_gate

/* One fixed-size stub per exception vector: push a dummy error code where the CPU pushes none, then the
   vector number. */
    .balign 16
exc_stubs:
    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 16
    .if (\vec == 8) || (\vec == 10) || (\vec == 11) || (\vec == 12) || (\vec == 13) || (\vec == 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    nop
    nop
    .else
    pushl $0
    .endif
    pushl $\vec
    jmp exc_common
    .endr

/* Stack: vector, error code, saved EIP: exactly mt_x86_exception's arguments in cdecl order. */
exc_common:
    call mt_x86_exception
1:  cli
    hlt
    jmp 1b

    .section .rodata
    .balign 16
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00cf9a000000ffff        /* 0x08 32-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10 data, DPL 0 */
gdt_end:
    .balign 8
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
    .balign 8
idt_ptr:
    .word 256 * 8 - 1
    .long idt

    .bss
    .balign 4096
idt:
    .skip 256 * 8
    .balign 16
boot_stack:
    .skip STACK_SIZE
boot_stack_top:
