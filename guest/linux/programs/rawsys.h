/*
 * raw_syscall(nr, a0..a5): one system call through the architecture's own instruction, at the global label
 * `raw_syscall_insn`, so a trace shows exactly which calls a program made (glibc's wrappers may use the vDSO,
 * retry, or pick another call). Returns the kernel's value (-errno on failure). Include in one file per program.
 */
#ifndef MEMTAP_RAWSYS_H
#define MEMTAP_RAWSYS_H

long raw_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

#if defined(__x86_64__)
__asm__(".text\n.globl raw_syscall\n.type raw_syscall, @function\nraw_syscall:\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n  mov %r9, %r8\n  mov 8(%rsp), %r9\n"
        ".globl raw_syscall_insn\nraw_syscall_insn:\n  syscall\n  ret\n"
        ".size raw_syscall, . - raw_syscall\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl raw_syscall\n.type raw_syscall, %function\nraw_syscall:\n"
        "  mov x8, x0\n  mov x0, x1\n  mov x1, x2\n  mov x2, x3\n  mov x3, x4\n  mov x4, x5\n  mov x5, x6\n"
        ".globl raw_syscall_insn\nraw_syscall_insn:\n  svc #0\n  ret\n"
        ".size raw_syscall, . - raw_syscall\n");
#elif defined(__riscv) && __riscv_xlen == 64
__asm__(".text\n.globl raw_syscall\n.type raw_syscall, @function\nraw_syscall:\n"
        "  mv a7, a0\n  mv a0, a1\n  mv a1, a2\n  mv a2, a3\n  mv a3, a4\n  mv a4, a5\n  mv a5, a6\n"
        ".globl raw_syscall_insn\nraw_syscall_insn:\n  ecall\n  ret\n"
        ".size raw_syscall, . - raw_syscall\n");
#else
#error "rawsys.h: no system call instruction for this architecture"
#endif

#endif
