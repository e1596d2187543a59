/* copy benchmark: memcpy of a 128 KiB buffer back and forth, REPEAT times: one load and one store per byte (the
 * guests' memcpy, guest/lib/string.c, copies bytewise, like a simple firmware's). */
#include <stddef.h>
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 400
#endif
#define SIZE 131072u

void *memcpy(void *d, const void *s, size_t n);

static uint8_t src[SIZE], dst[SIZE];

int main(void)
{
    uint32_t seed = 1;
    for (uint32_t i = 0; i < SIZE; i++)
        src[i] = (uint8_t)(bench_lcg(&seed) >> 24);

    MEMTAP_START();
    for (uint32_t r = 0; r < REPEAT; r++) {
        memcpy(dst, src, SIZE);
        dst[r % SIZE] ^= (uint8_t)r;
        memcpy(src, dst, SIZE);
    }
    MEMTAP_STOP();

    uint64_t sum = 0;
    for (uint32_t i = 0; i < SIZE; i++)
        sum = sum * 31 + src[i];
    bench_report("copy", sum);
    return 0;
}
