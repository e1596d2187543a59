/*
 * memtap guest markers: control tracing from inside the guest.
 *
 * Each marker is one instruction that architecturally does nothing (a NOP-class encoding that no compiler
 * emits), so the same binary runs unchanged on hardware and under QEMU without memtap. The memtap plugin
 * recognises the encodings when it translates them. Usable from C and from assembly (.S files run through cpp).
 *
 *   MEMTAP_START()        start tracing everything selected with --events     (op 0)
 *   MEMTAP_STOP()         stop tracing                                        (op 1)
 *   MEMTAP_START_DATA()   start tracing loads and stores only                 (op 2)
 *   MEMTAP_STOP_DATA()    stop tracing loads and stores                       (op 3)
 *   MEMTAP_START_FETCH()  start tracing instruction fetches only              (op 4)
 *   MEMTAP_STOP_FETCH()   stop tracing instruction fetches                    (op 5)
 *   MEMTAP_MARK(n)        put a marker record carrying n (a constant, 0..65535) into the trace
 *
 * Records the markers themselves produce: START and STOP markers produce none (tracing starts with the
 * instruction after a START marker and ends with the instruction before a STOP marker). MEMTAP_MARK(n) produces
 * its own fetch record (when fetches are traced) followed by one marker record whose value is n.
 *
 * Encodings (the plugin matches exactly these):
 *   x86 (32 and 64 bit)  nopl disp32(%eax): 0f 1f 80 <disp32>; control: disp32 = 0x4d540000 + op,
 *                        mark: disp32 = 0x4d4b0000 + n
 *   AArch64              movz xzr, #imm16, lsl #hw*16; control: hw = 1, imm16 = 0x4d50 + op;
 *                        mark: hw = 2, imm16 = n
 *   RISC-V (32 and 64)   slti x0, rs1, imm12 (a HINT reserved for custom use); control: rs1 = x0,
 *                        imm12 = 0x4d0 + op; mark: rs1 = x16 + (n >> 12), imm12 = n & 0xfff
 *   Arm A32              pli [rn, #+/-imm12] (preload-instruction hint); control: pli [r0, #-(0x4d0 + op)];
 *                        mark: pli [r(n >> 12), #+(n & 0xfff)]
 *   Arm Thumb-2          pli (32-bit encodings); control: pli [r0, #-(0x50 + op)] (T2, imm8);
 *                        mark: pli [r(n >> 12), #+(n & 0xfff)] (T1, imm12)
 *   PowerPC (32 bit)     twi 0, ra, si (trap with no conditions: never traps); control: ra = r0,
 *                        si = 0x4d50 + op; mark: ra = r1, si = n
 */
#ifndef MEMTAP_GUEST_H
#define MEMTAP_GUEST_H

#define MEMTAP_OP_START 0
#define MEMTAP_OP_STOP 1
#define MEMTAP_OP_START_DATA 2
#define MEMTAP_OP_STOP_DATA 3
#define MEMTAP_OP_START_FETCH 4
#define MEMTAP_OP_STOP_FETCH 5

#define MEMTAP_STR_(...) #__VA_ARGS__
#define MEMTAP_STR(...) MEMTAP_STR_(__VA_ARGS__)

#if defined(__x86_64__) || defined(__i386__)
#define MEMTAP_CTL_ASM_(op) .byte 0x0f, 0x1f, 0x80; .long (0x4d540000 + (op))
#define MEMTAP_MARK_ASM_(n) .byte 0x0f, 0x1f, 0x80; .long (0x4d4b0000 + ((n) & 0xffff))
#elif defined(__aarch64__)
#define MEMTAP_CTL_ASM_(op) .inst (0xd2800000 | (1 << 21) | ((0x4d50 + (op)) << 5) | 31)
#define MEMTAP_MARK_ASM_(n) .inst (0xd2800000 | (2 << 21) | (((n) & 0xffff) << 5) | 31)
#elif defined(__arm__) && defined(__thumb__)
#define MEMTAP_CTL_ASM_(op) .inst.w (0xf910fc50 + (op))
#define MEMTAP_MARK_ASM_(n) .inst.w (0xf990f000 | ((((n) >> 12) & 0xf) << 16) | ((n) & 0xfff))
#elif defined(__arm__)
#define MEMTAP_CTL_ASM_(op) .inst (0xf450f000 | (0x4d0 + (op)))
#define MEMTAP_MARK_ASM_(n) .inst (0xf4d0f000 | ((((n) >> 12) & 0xf) << 16) | ((n) & 0xfff))
#elif defined(__powerpc__) && !defined(__powerpc64__)
#define MEMTAP_CTL_ASM_(op) .long (0x0c000000 | (0x4d50 + (op)))
#define MEMTAP_MARK_ASM_(n) .long (0x0c010000 | ((n) & 0xffff))
#elif defined(__riscv)
#define MEMTAP_CTL_ASM_(op) .4byte (0x2013 | ((0x4d0 + (op)) << 20))
#define MEMTAP_MARK_ASM_(n) .4byte (0x2013 | (((n) & 0xfff) << 20) | ((16 + (((n) >> 12) & 0xf)) << 15))
#else
#error "memtap.h: no marker encoding for this architecture"
#endif

#ifdef __ASSEMBLER__
#define MEMTAP_START MEMTAP_CTL_ASM_(MEMTAP_OP_START)
#define MEMTAP_STOP MEMTAP_CTL_ASM_(MEMTAP_OP_STOP)
#define MEMTAP_START_DATA MEMTAP_CTL_ASM_(MEMTAP_OP_START_DATA)
#define MEMTAP_STOP_DATA MEMTAP_CTL_ASM_(MEMTAP_OP_STOP_DATA)
#define MEMTAP_START_FETCH MEMTAP_CTL_ASM_(MEMTAP_OP_START_FETCH)
#define MEMTAP_STOP_FETCH MEMTAP_CTL_ASM_(MEMTAP_OP_STOP_FETCH)
#define MEMTAP_MARK(n) MEMTAP_MARK_ASM_(n)
#else
#define MEMTAP_ASM_(...) __asm__ volatile(MEMTAP_STR(__VA_ARGS__) ::: "memory")
#define MEMTAP_START() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_START))
#define MEMTAP_STOP() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_STOP))
#define MEMTAP_START_DATA() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_START_DATA))
#define MEMTAP_STOP_DATA() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_STOP_DATA))
#define MEMTAP_START_FETCH() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_START_FETCH))
#define MEMTAP_STOP_FETCH() MEMTAP_ASM_(MEMTAP_CTL_ASM_(MEMTAP_OP_STOP_FETCH))
#define MEMTAP_MARK(n) MEMTAP_ASM_(MEMTAP_MARK_ASM_(n))
#endif

#endif /* MEMTAP_GUEST_H */
