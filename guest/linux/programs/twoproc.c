/*
 * twoproc: two processes, one code. After MEMTAP_START the program forks; each process stores two known u64
 * values into twoproc_page (4096-aligned, so the same virtual address in both address spaces and, after
 * copy-on-write, a different physical page in each): +0 at the instruction `twoproc_store0`, +8 at
 * `twoproc_store1`, the values TWOPROC_VALUE(who, slot) with who 0 for the parent, 1 for the child, and slot 1
 * and 2. Each reads its values back; the child reports by its exit status. The parent waits for the child,
 * then MEMTAP_STOP. Prints `twoproc: parent=0x74776f7000000001,0x74776f7000000002 child=ok`.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memtap.h"

#define TWOPROC_VALUE(who, slot) (0x74776f7000000000ull | ((uint64_t)(who) << 16) | (slot))

uint64_t twoproc_page[512] __attribute__((aligned(4096)));

/* The two stores, each at its own label; not inlined or cloned so the labels name one instruction each. */
__attribute__((noipa)) static void store_pattern(uint64_t *page, uint64_t first, uint64_t second)
{
#if defined(__x86_64__)
    __asm__ volatile(".globl twoproc_store0\ntwoproc_store0: movq %1, (%0)\n"
                     ".globl twoproc_store1\ntwoproc_store1: movq %2, 8(%0)"
                     :: "r"(page), "r"(first), "r"(second) : "memory");
#elif defined(__aarch64__)
    __asm__ volatile(".globl twoproc_store0\ntwoproc_store0: str %1, [%0]\n"
                     ".globl twoproc_store1\ntwoproc_store1: str %2, [%0, #8]"
                     :: "r"(page), "r"(first), "r"(second) : "memory");
#elif defined(__riscv)
    __asm__ volatile(".globl twoproc_store0\ntwoproc_store0: sd %1, 0(%0)\n"
                     ".globl twoproc_store1\ntwoproc_store1: sd %2, 8(%0)"
                     :: "r"(page), "r"(first), "r"(second) : "memory");
#else
#error "twoproc: no store for this architecture"
#endif
}

int main(void)
{
    int status = -1;
    MEMTAP_START();
    pid_t child = fork();
    if (child < 0)
        return 2;
    int who = child == 0;
    store_pattern(twoproc_page, TWOPROC_VALUE(who, 1), TWOPROC_VALUE(who, 2));
    int ok = twoproc_page[0] == TWOPROC_VALUE(who, 1) && twoproc_page[1] == TWOPROC_VALUE(who, 2);
    if (who)
        _exit(ok ? 0 : 1);
    waitpid(child, &status, 0);
    MEMTAP_STOP();
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("twoproc: parent=%#llx,%#llx child=%s\n", (unsigned long long)twoproc_page[0],
           (unsigned long long)twoproc_page[1], child_ok ? "ok" : "failed");
    return ok && child_ok ? 0 : 1;
}
