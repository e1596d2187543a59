/* Shared helpers for the benchmark workloads (header-only). */
#ifndef MT_BENCH_H
#define MT_BENCH_H
#include <stdint.h>
#include "platform.h"

static inline uint32_t bench_lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

static inline void bench_report(const char *name, uint64_t checksum)
{
    mt_puts(name);
    mt_puts(": checksum=");
    mt_put_hex(checksum);
    mt_puts("\n");
}
#endif
