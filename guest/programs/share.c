/* share: 4 CPUs; false sharing and true sharing with known byte patterns, for `memtap sharing`.
 *
 * Between START and STOP, after a barrier that lets all four run at once, CPU k does SHARE_N times:
 *   counters.c[k] += 1          a u64 load and store at counters + 8k (one 64-byte line of four counters:
 *                               every CPU writes only its own 8 bytes: false sharing)
 *   shared_total.value += 1     an atomic read-modify-write of the unsigned long at shared_total (its own
 *                               line, written by every CPU: true sharing)
 * The barrier is the unsigned long `share_arrived.value` in a third line: each CPU adds 1 atomically and
 * spins until all four have; at the end each adds 1 again and CPU 0 waits for 8 before STOP. AArch64 builds
 * with LSE atomics (needs -cpu max, see arch.json) so an atomic add is exactly one load and one store, never
 * an LL/SC retry loop. Prints `share: total=0x...` (4 * SHARE_N) and `share: ok`.
 */
#include <stdint.h>
#include "memtap.h"
#include "platform.h"

#define NCPU 4
#ifndef SHARE_N
#define SHARE_N 5000
#endif

/* Each variable fills its 64-byte line, so no other variable can share it. */
struct counters {
    volatile uint64_t c[NCPU];
    uint64_t pad[8 - NCPU];
};

/* unsigned long: the widest atomic every arch has (8 bytes on 64-bit arches, 4 on 32-bit ones). */
struct total {
    volatile unsigned long value;
    char pad[64 - sizeof(unsigned long)];
};

struct counters counters __attribute__((aligned(64)));
struct total shared_total __attribute__((aligned(64)));
struct total share_arrived __attribute__((aligned(64)));

/* Spin until the barrier count reaches target, polling it only every 256 iterations of an empty loop (no
 * memory access), so waiting adds few records. */
static void wait_for(unsigned long target)
{
    while (__atomic_load_n(&share_arrived.value, __ATOMIC_ACQUIRE) < target)
        for (unsigned i = 0; i < 256; i++)
            __asm__ volatile("");
}

static void barrier(unsigned long target)
{
    __atomic_fetch_add(&share_arrived.value, 1, __ATOMIC_SEQ_CST);
    wait_for(target);
}

static void work(unsigned k)
{
    barrier(NCPU);
    for (uint32_t i = 0; i < SHARE_N; i++) {
        counters.c[k] = counters.c[k] + 1;
        __atomic_fetch_add(&shared_total.value, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&share_arrived.value, 1, __ATOMIC_SEQ_CST);
}

int main(void)
{
    MEMTAP_START();
    int started = mt_start_cpus(NCPU, work);
    if (started != NCPU - 1) {
        MEMTAP_STOP();
        mt_puts("share: only ");
        mt_put_dec((unsigned long)started);
        mt_puts(" secondary CPUs started (run with -smp 4)\n");
        return 1;
    }
    work(0);
    wait_for(2 * NCPU);
    MEMTAP_STOP();

    mt_puts("share: total=");
    mt_put_hex(shared_total.value);
    mt_puts("\n");
    for (unsigned k = 0; k < NCPU; k++)
        if (counters.c[k] != SHARE_N) {
            mt_puts("share: bad counter\n");
            return 2;
        }
    if (shared_total.value != (unsigned long)NCPU * SHARE_N)
        return 3;
    mt_puts("share: ok\n");
    return 0;
}
