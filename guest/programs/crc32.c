/* crc32 benchmark: bitwise CRC32 over a 64 KiB buffer, REPEAT times. */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 1024
#endif
#define SIZE 65536

static uint8_t buf[SIZE];

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, unsigned long n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return crc;
}

int main(void)
{
    uint32_t seed = 1;
    for (unsigned i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)(bench_lcg(&seed) >> 24);

    MEMTAP_START();
    uint32_t crc = 0xffffffffu;
    for (int r = 0; r < REPEAT; r++)
        crc = crc32_update(crc, buf, SIZE);
    crc = ~crc;
    MEMTAP_STOP();

    bench_report("crc32", crc);
    return 0;
}
