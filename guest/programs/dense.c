/* dense benchmark: the densest access pattern of the recording-speed issue, a load and a store every few
 * instructions: buf[(n * 7) & 0xffff] += n, REPEAT times. */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 80000000u
#endif
#define WORDS 65536u

static uint32_t buf[WORDS];

int main(void)
{
    MEMTAP_START();
    for (uint32_t n = 0; n < REPEAT; n++)
        buf[(n * 7u) & (WORDS - 1u)] += n;
    MEMTAP_STOP();

    uint64_t sum = 0;
    for (uint32_t i = 0; i < WORDS; i++)
        sum += buf[i] * (uint64_t)(i + 1);
    bench_report("dense", sum);
    return 0;
}
