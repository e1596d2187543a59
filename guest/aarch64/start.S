/* aarch64 entry (EL1, MMU off). QEMU starts only CPU 0 at _start; the others stay powered off until
 * mt_start_cpus() turns them on with PSCI CPU_ON at mt_secondary_start (x0 = cpu number). */
#define MT_MAX_CPUS 8
#define MT_STACK_SIZE 16384

/* x0 = cpu: sp = __stack_top - cpu * MT_STACK_SIZE; FP/SIMD on; default vectors. Clobbers x1, x2. */
.macro cpu_setup
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     x2, #MT_STACK_SIZE
    msub    x1, x0, x2, x1
    mov     sp, x1
    mov     x1, #(3 << 20)          /* CPACR_EL1.FPEN = 0b11 */
    msr     cpacr_el1, x1
    adrp    x1, mt_vectors
    add     x1, x1, :lo12:mt_vectors
    msr     vbar_el1, x1
    isb
.endm

    .section .text.start, "ax"
    .globl _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, mt_park
    cpu_setup
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  bl      main
    bl      mt_exit
    b       mt_park

    .globl mt_secondary_start
mt_secondary_start:
    and     x0, x0, #0xff
    cpu_setup
    bl      mt_secondary_main
    .globl mt_park
mt_park:
    msr     daifset, #0xf
3:  wfi
    b       3b

/* Default exception vectors: report and exit non-zero. x0 = vector slot (0..15). */
    .balign 2048
    .globl mt_vectors
mt_vectors:
    .set slot, 0
    .rept 16
    .balign 128
    mov     x0, #slot
    b       mt_vector_common
    .set slot, slot + 1
    .endr
mt_vector_common:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      mt_unexpected_exception
    b       mt_park
