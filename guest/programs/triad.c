/* triad benchmark: STREAM's triad on integers, a[i] = b[i] + 3 * c[i] over three 256 KiB arrays, REPEAT times:
 * two loads and a store per element, streaming through memory. */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 1600
#endif
#define N 32768u

static uint64_t a[N], b[N], c[N];

int main(void)
{
    uint32_t seed = 1;
    for (uint32_t i = 0; i < N; i++) {
        b[i] = bench_lcg(&seed);
        c[i] = bench_lcg(&seed);
    }

    MEMTAP_START();
    for (uint32_t r = 0; r < REPEAT; r++) {
        for (uint32_t i = 0; i < N; i++)
            a[i] = b[i] + 3 * c[i];
        b[r % N] ^= a[(r * 31u) % N];   /* keeps the passes from being one */
    }
    MEMTAP_STOP();

    uint64_t sum = 0;
    for (uint32_t i = 0; i < N; i++)
        sum += a[i] ^ (i * 0x9e3779b97f4a7c15ull);
    bench_report("triad", sum);
    return 0;
}
