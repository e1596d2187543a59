/*
 * memtap x86_64 guest: boot code.
 *
 * QEMU (-M pc -kernel FILE) loads the image with its multiboot v1 loader and enters _start in 32-bit protected
 * mode, paging off, with EAX = 0x2badb002 and EBX = the multiboot info. We:
 *   1. load a GDT with a 64-bit code segment,
 *   2. point CR3 at static identity-mapped page tables (2 MiB pages covering the first 4 GiB),
 *   3. enable PAE, EFER.LME and paging, far-jump to 64-bit code,
 *   4. set the stack, zero .bss, install the IDT and call main(); its return value goes to mt_exit().
 * Everything runs at CPL 0. Secondary CPUs (mt_start_cpus in platform.c) come in through ap_trampoline and
 * take the same path into long mode, then run mt_x86_ap_main on the stack mt_start_cpus gave them.
 */

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00010000 /* bit 16: load addresses in header (a.out kludge), so QEMU accepts an ELF64 file */

#define STACK_SIZE 0x10000
#define EXC_STUB_SIZE 16

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header     /* header_addr */
    .long __image_start /* load_addr: file offset 0 (see link.ld) */
    .long _edata        /* load_end_addr */
    .long _end          /* bss_end_addr */
    .long _start        /* entry_addr */

/* ------------------------------------------------------------------------------------------------------ */
    .section .text.boot, "ax"
    .code32
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    movl $boot_stack_top, %esp
    xorl %ebp, %ebp                 /* 0: boot CPU */
    jmp enter_long_mode

/* Secondary CPUs arrive here from the real-mode trampoline (ap_trampoline below) with CS = 0x18. */
    .globl mt_x86_ap_start32
mt_x86_ap_start32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    cld
    movl $1, %ebp                   /* 1: secondary CPU */

enter_long_mode:
    lgdt gdt_ptr

    /* CR4: PAE (bit 5), OSFXSR (bit 9), OSXMMEXCPT (bit 10) */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4

    movl $pml4, %eax
    movl %eax, %cr3

    /* EFER.LME */
    movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr

    /* CR0: PG | PE | MP, clear EM (bit 2) so SSE/x87 instructions work if a program uses them */
    movl %cr0, %eax
    andl $~(1 << 2), %eax
    orl $((1 << 31) | (1 << 0) | (1 << 1)), %eax
    movl %eax, %cr0

    ljmp $0x08, $long_mode_entry

    .code64
long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    lgdt gdt_ptr                    /* reload with the 64-bit base (the upper half is 0 anyway) */
    testl %ebp, %ebp
    jnz ap_long_mode

    movabsq $boot_stack_top, %rsp   /* 16-byte aligned */

    /* zero .bss (the boot stack is in .bss, but nothing has been pushed yet) */
    movabsq $__bss_start, %rdi
    movabsq $__bss_end, %rcx
    subq %rdi, %rcx
    shrq $3, %rcx
    xorl %eax, %eax
    rep stosq

    call mt_x86_setup_idt
    call mt_x86_platform_init
    call main
    movl %eax, %edi
    call mt_exit
1:  cli
    hlt
    jmp 1b
    .size _start, . - _start

ap_long_mode:
    movq mt_x86_ap_stack(%rip), %rsp    /* set by mt_start_cpus before it starts this CPU */
    lidt idt_ptr(%rip)
    movl mt_x86_ap_cpu(%rip), %edi
    call mt_x86_ap_main                 /* platform.c: runs the CPU's function, then parks; never returns */
1:  cli
    hlt
    jmp 1b

/*
 * Real-mode trampoline for secondary CPUs. mt_start_cpus copies [ap_trampoline, ap_trampoline_end) to
 * MT_X86_TRAMPOLINE (platform.c, 4 KiB aligned, below 1 MiB) and sends INIT + SIPI with vector
 * MT_X86_TRAMPOLINE >> 12, so the CPU starts here with CS = MT_X86_TRAMPOLINE >> 4, IP = 0.
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
    ljmpl $0x18, $mt_x86_ap_start32
    .balign 8
ap_gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:
    .code64

/* ------------------------------------------------------------------------------------------------------ */
/* IDT: vectors 0..31 -> report the exception and exit(1). fault.S replaces vector 6 (#UD) with its handler. */
    .text
    .globl mt_x86_setup_idt
    .type mt_x86_setup_idt, @function
mt_x86_setup_idt:
    pushq %rbx
    pushq %r12
    pushq %r13
    xorl %ebx, %ebx
    leaq exc_stubs(%rip), %r12
1:  movl %ebx, %edi
    movq %r12, %rsi
    call mt_x86_set_gate
    addq $EXC_STUB_SIZE, %r12
    incl %ebx
    cmpl $32, %ebx
    jne 1b
    popq %r13
    popq %r12
    popq %rbx
    lidt idt_ptr(%rip)
    ret
    .size mt_x86_setup_idt, . - mt_x86_setup_idt

/* void mt_x86_set_gate(unsigned vector, void *handler): point IDT entry `vector` (< 256) at `handler` as a
   64-bit interrupt gate (CS 0x08, DPL 0, IST 0). fault.S installs its #UD handler with this. */
    .globl mt_x86_set_gate
    .type mt_x86_set_gate, @function
mt_x86_set_gate:
    movl %edi, %edi
    shlq $4, %rdi
    leaq idt(%rip), %rax
    addq %rax, %rdi
    movq %rsi, %rax
    movw %ax, 0(%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    shrq $16, %rax
    movw %ax, 6(%rdi)
    shrq $16, %rax
    movl %eax, 8(%rdi)
    movl $0, 12(%rdi)
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
    pushq $0
    .endif
    pushq $\vec
    jmp exc_common
    .endr

exc_common:
    movq 0(%rsp), %rdi      /* vector */
    movq 8(%rsp), %rsi      /* error code */
    movq 16(%rsp), %rdx     /* saved RIP */
    andq $-16, %rsp
    call mt_x86_exception
1:  cli
    hlt
    jmp 1b

/* ------------------------------------------------------------------------------------------------------ */
    .section .rodata
    .balign 16
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00af9a000000ffff        /* 0x08 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10 data, DPL 0 */
    .quad 0x00cf9a000000ffff        /* 0x18 32-bit code, DPL 0 (AP trampoline) */
gdt_end:
    .balign 8
    .globl mt_x86_gdt_ptr
mt_x86_gdt_ptr:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

    .balign 8
idt_ptr:
    .word 256 * 16 - 1
    .quad idt

/* Static identity map of the first 4 GiB (RAM and the local APIC at 0xfee00000) with 2 MiB pages:
   PML4[0] -> PDPT, PDPT[i] -> PD i, PD i entry j = 2 MiB page i * 512 + j (present, writable, PS). */
    .section .data.pagetables, "aw"
    .balign 4096
    .globl pml4
pml4:
    .quad pdpt + 0x003
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x0000 + 0x003
    .quad pd + 0x1000 + 0x003
    .quad pd + 0x2000 + 0x003
    .quad pd + 0x3000 + 0x003
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x083
    .set page, page + 1
    .endr

    .bss
    .balign 4096
idt:
    .skip 256 * 16
    .balign 16
boot_stack:
    .skip STACK_SIZE
boot_stack_top:
