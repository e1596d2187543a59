/* cmo: ARMv7 cache-maintenance (CP15), preload and exclusive instructions at known labels between START and
 * STOP, each once, on the 64-byte-aligned `cmo_line` buffer (r0). Assembles as A32 (arm) or Thumb-2 (arm-thumb
 * includes this file). r1 holds a set/way value naming level 2 (bits 3:1 = 1). Returns 0 when strex succeeded. */
#include "memtap.h"

    .syntax unified
#ifdef __thumb__
    .thumb
#else
    .arm
#endif
    .text
    .globl main
    .globl cmo_begin, cmo_dccimvac, cmo_dccmvac, cmo_dcimvac, cmo_dccisw, cmo_icimvau, cmo_iciallu
    .globl cmo_pld, cmo_pldw, cmo_ldrex, cmo_strex, cmo_end
    .type main, %function
    .balign 4
main:
    ldr     r0, =cmo_line
    mov     r1, #(1 << 1)
    mov     r2, #5
    MEMTAP_START
cmo_begin:
cmo_dccimvac: mcr   p15, 0, r0, c7, c14, 1
cmo_dccmvac:  mcr   p15, 0, r0, c7, c10, 1
cmo_dcimvac:  mcr   p15, 0, r0, c7, c6, 1
cmo_dccisw:   mcr   p15, 0, r1, c7, c14, 2
cmo_icimvau:  mcr   p15, 0, r0, c7, c5, 1
cmo_iciallu:  mcr   p15, 0, r0, c7, c5, 0
cmo_pld:      pld   [r0, #64]
cmo_pldw:     pldw  [r0, #128]
cmo_ldrex:    ldrex r3, [r0]
cmo_strex:    strex r4, r2, [r0]
cmo_end: MEMTAP_STOP
    mov     r0, r4
    bx      lr

    .bss
    .balign 64
    .globl cmo_line
    .type cmo_line, %object
    .size cmo_line, 256
cmo_line:
    .zero 256
