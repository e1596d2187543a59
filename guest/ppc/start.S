/* PowerPC e500 (-M ppce500) entry. QEMU starts CPU 0 at _start (supervisor, MSR[ME] = 0, a 1:1 TLB1 entry for
 * the first 64 MiB); the others wait in QEMU's spin table until mt_start_cpus() releases them at
 * mt_secondary_start with r3 = cpu number. */
#define MT_STACK_SIZE 16384
#define SPR_IVPR 63
#define SPR_HID0 1008
#define MSR_SPV 0x02000000          /* SPE on: seq.S uses the 8-byte evstdd / evldd */
#define MSR_WE 0x00040000           /* with HID0[DOZE]: the CPU halts until an interrupt (none is enabled) */
#define HID0_DOZE 0x00800000

/* r3 = cpu: r1 = stack top of this cpu (with a null back chain), vectors, SPE on. Clobbers r0, r4. */
.macro cpu_setup
    lis     %r1, __stack_top@ha
    addi    %r1, %r1, __stack_top@l
    mulli   %r4, %r3, MT_STACK_SIZE
    subf    %r1, %r4, %r1
    addi    %r1, %r1, -16
    li      %r0, 0
    stw     %r0, 0(%r1)
    lis     %r4, __image_start@ha
    addi    %r4, %r4, __image_start@l
    mtspr   SPR_IVPR, %r4
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    li      %r0, vector_\n@l            /* offset from IVPR: the image is 64 KiB aligned */
    mtspr   400 + \n, %r0            /* IVORn */
    .endr
    lis     %r4, MSR_SPV@h
    mtmsr   %r4
    isync
.endm

    .section .text.start, "ax"
    .globl _start
_start:
    li      %r3, 0
    cpu_setup
    lis     %r4, __bss_start@ha
    addi    %r4, %r4, __bss_start@l
    lis     %r5, __bss_end@ha
    addi    %r5, %r5, __bss_end@l
    li      %r0, 0
1:  cmplw   %r4, %r5
    bge     2f
    stw     %r0, 0(%r4)
    addi    %r4, %r4, 4
    b       1b
2:  bl      mt_ppc_platform_init
    bl      main
    bl      mt_exit
    b       mt_park

    .globl mt_secondary_start
mt_secondary_start:
    cpu_setup
    bl      mt_secondary_main
    .globl mt_park
mt_park:
    mfspr   %r4, SPR_HID0
    oris    %r4, %r4, HID0_DOZE@h
    mtspr   SPR_HID0, %r4
3:  mfmsr   %r4
    oris    %r4, %r4, MSR_WE@h
    sync
    mtmsr   %r4
    isync
    b       3b

/* Default exception vectors (IVOR0..15, 16-byte aligned, within 64 KiB of IVPR): report and exit non-zero. */
    .section .text.vectors, "ax"
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 16
vector_\n:
    li      %r3, \n
    b       vector_common
    .endr
vector_common:
    mfmsr   %r4                      /* interrupts clear MSR[SPV]; the C reporter may use SPE */
    oris    %r4, %r4, MSR_SPV@h
    mtmsr   %r4
    isync
    mfsrr0  %r4
    mfsrr1  %r5
    mfspr   %r6, 62                  /* ESR */
    bl      mt_ppc_unexpected
    b       mt_park
