/* Arm (ARMv7-A, Cortex-A15) -M virt entry, shared by the A32 (arm) and Thumb-2 (arm-thumb) guests: this file
 * assembles in the instruction set the arch's cflags select (-marm / -mthumb), and in Thumb builds SCTLR.TE makes
 * exceptions enter in Thumb state too. QEMU starts CPU 0 at _start in SVC mode, MMU off; the others stay off until
 * mt_start_cpus() turns them on with PSCI CPU_ON at mt_secondary_start (r0 = cpu number). */
#define MT_STACK_SIZE 16384

    .syntax unified
#ifdef __thumb__
    .thumb
#define VECTOR(target) b.w target
#else
    .arm
#define VECTOR(target) b target
#endif

/* r0 = cpu: sp = __stack_top - cpu * MT_STACK_SIZE; FPU on; default vectors; Thumb exceptions in Thumb builds.
 * Clobbers r1, r2. */
.macro cpu_setup
    ldr     r1, =__stack_top
    mov     r2, #MT_STACK_SIZE
    mls     r1, r0, r2, r1
    mov     sp, r1
    mrc     p15, 0, r1, c1, c0, 2   /* CPACR: cp10, cp11 full access */
    orr     r1, r1, #(0xf << 20)
    mcr     p15, 0, r1, c1, c0, 2
    isb
    mov     r1, #(1 << 30)          /* FPEXC.EN */
    vmsr    fpexc, r1
    ldr     r1, =mt_vectors
    mcr     p15, 0, r1, c12, c0, 0  /* VBAR */
    mrc     p15, 0, r1, c1, c0, 0   /* SCTLR */
    bic     r1, r1, #(1 << 13)      /* V = 0: vectors at VBAR */
#ifdef __thumb__
    orr     r1, r1, #(1 << 30)      /* TE */
#endif
    mcr     p15, 0, r1, c1, c0, 0
    isb
.endm

    .fpu vfpv4
    .section .text.start, "ax"
    .globl _start
    .type _start, %function
_start:
    mrc     p15, 0, r0, c0, c0, 5   /* MPIDR */
    ands    r0, r0, #0xff
    bne     mt_park
    cpu_setup
    ldr     r1, =__bss_start
    ldr     r2, =__bss_end
    mov     r3, #0
1:  cmp     r1, r2
    bhs     2f
    str     r3, [r1], #4
    b       1b
2:  bl      main
    bl      mt_exit
    b       mt_park

    .globl mt_secondary_start
    .type mt_secondary_start, %function
mt_secondary_start:
    and     r0, r0, #0xff
    cpu_setup
    bl      mt_secondary_main
    .globl mt_park
    .type mt_park, %function
mt_park:
    cpsid   aif
3:  wfi
    b       3b
    .ltorg

/* Default exception vectors: report and exit non-zero (the report runs on the SVC stack). */
    .balign 32
    .globl mt_vectors
mt_vectors:
    .irp slot, 0,1,2,3,4,5,6,7
    VECTOR(vector_\slot)
    .endr
    .irp slot, 0,1,2,3,4,5,6,7
vector_\slot:
    mov     r0, #\slot
    b       vector_common
    .endr
vector_common:
    mov     r1, lr
    mrs     r2, spsr
    cps     #0x13
    bl      mt_arm_unexpected
    b       mt_park
