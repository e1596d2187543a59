/* RISC-V entry (M-mode, -bios none), shared by riscv64 and riscv32 (its arch.json lists this file).
 * All harts enter _start with a0 = hartid.
 * Hart 0: stack, FPU on, default trap vector, zero .bss, main(), mt_exit(ret).
 * Other harts: own stack, then sleep in WFI until mt_start_cpus() sends them a software interrupt (CLINT msip). */
#define MT_MAX_CPUS 8
#define MT_STACK_SIZE 16384
#define CLINT_MSIP 0x2000000
#if __riscv_xlen == 64
#define REG_L ld
#else
#define REG_L lw
#endif

    .section .text.start, "ax"
    .globl _start
_start:
    csrr    a0, mhartid
    li      t0, MT_MAX_CPUS
    bgeu    a0, t0, mt_park
    /* sp = __stack_top - hartid * MT_STACK_SIZE */
    la      sp, __stack_top
    li      t0, MT_STACK_SIZE
    mul     t1, a0, t0
    sub     sp, sp, t1
    la      t0, mt_trap_default
    csrw    mtvec, t0
    li      t0, (1 << 13)           /* mstatus.FS = Initial: enable the FPU */
    csrs    mstatus, t0
    csrw    fcsr, zero
    bnez    a0, secondary
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  call    main
    call    mt_exit
    j       mt_park

secondary:
    mv      s0, a0
    li      t0, 8                   /* mie.MSIE: wake WFI on software interrupts (mstatus.MIE stays 0) */
    csrw    mie, t0
3:  wfi
    li      t0, CLINT_MSIP          /* clear our msip */
    slli    t1, s0, 2
    add     t0, t0, t1
    sw      zero, 0(t0)
    fence   rw, rw
    la      t0, mt_secondary_fn     /* released yet? */
    REG_L   t1, 0(t0)
    beqz    t1, 3b
    mv      a0, s0
    call    mt_secondary_main
    /* fall through */
    .globl mt_park
mt_park:
    csrw    mie, zero
4:  wfi
    j       4b

    /* Unexpected trap: report and exit non-zero (uses whatever sp is). */
    .balign 4
    .globl mt_trap_default
mt_trap_default:
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    mt_unexpected_trap
    j       mt_park
