/* smp: 4 CPUs; CPU k stores (k << 16) | i (i = 0..255) as u32 to mt_smp_region + k * 1024 bytes. */
#include <stdint.h>
#include "memtap.h"
#include "platform.h"

#define NCPU 4
#define NVAL 256

volatile uint32_t mt_smp_region[NCPU * NVAL] __attribute__((aligned(4096)));
static volatile int done[NCPU];

static void work(unsigned k)
{
    volatile uint32_t *p = mt_smp_region + k * NVAL;
    for (uint32_t i = 0; i < NVAL; i++)
        p[i] = (k << 16) | i;
    __atomic_store_n(&done[k], 1, __ATOMIC_RELEASE);
}

int main(void)
{
    MEMTAP_START();
    int started = mt_start_cpus(NCPU, work);
    work(0);
    if (started == NCPU - 1)
        for (int k = 1; k < NCPU; k++)
            while (!__atomic_load_n(&done[k], __ATOMIC_ACQUIRE))
                ;
    MEMTAP_STOP();

    if (started != NCPU - 1) {
        mt_puts("smp: only ");
        mt_put_dec((unsigned long)started);
        mt_puts(" secondary CPUs started (run with -smp 4)\n");
        return 1;
    }
    for (unsigned k = 0; k < NCPU; k++)
        for (uint32_t i = 0; i < NVAL; i++)
            if (mt_smp_region[k * NVAL + i] != ((k << 16) | i)) {
                mt_puts("smp: bad value\n");
                return 2;
            }
    mt_puts("smp: ok\n");
    return 0;
}
