/* memtap export core: what the exporters share: reading a record column's values whatever their integer width,
 * and printing numbers in decimal and hex without library calls (digits are written from the end backwards). */
#ifndef MEMTAP_EXPORT_VALUES_H
#define MEMTAP_EXPORT_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* Value i of an array of `width`-byte unsigned integers (1, 2, 4 or 8). */
static inline uint64_t mx_load(const void *data, unsigned width, size_t i)
{
    switch (width) {
    case 1:
        return ((const uint8_t *)data)[i];
    case 2:
        return ((const uint16_t *)data)[i];
    case 4:
        return ((const uint32_t *)data)[i];
    default:
        return ((const uint64_t *)data)[i];
    }
}

static const char MX_HEX_DIGITS[] = "0123456789abcdef";
static const char MX_DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* x as lowercase hex digits (no prefix), at least `min` of them; returns the end. */
static inline char *mx_put_hex(char *o, uint64_t x, int min)
{
    int digits = x ? (67 - __builtin_clzll(x)) / 4 : 1;
    if (digits < min)
        digits = min;
    char *end = o + digits;
    for (char *p = end; p > o; x >>= 4)
        *--p = MX_HEX_DIGITS[x & 15];
    return end;
}

static inline unsigned mx_decimal_digits(uint64_t x)
{
    static const uint64_t P10[] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                   100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
                                   1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
                                   1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
                                   1000000000000000000ULL, 10000000000000000000ULL};
    unsigned n = 1;
    while (n < 20 && x >= P10[n])
        n++;
    return n;
}

/* x in decimal; returns the end. */
static inline char *mx_put_dec(char *o, uint64_t x)
{
    char *end = o + mx_decimal_digits(x), *q = end;
    while (x >= 100) {
        const char *d = MX_DIGIT_PAIRS + 2 * (x % 100);
        x /= 100;
        q -= 2;
        q[0] = d[0];
        q[1] = d[1];
    }
    if (x >= 10) {
        q[-2] = MX_DIGIT_PAIRS[2 * x];
        q[-1] = MX_DIGIT_PAIRS[2 * x + 1];
    } else {
        q[-1] = (char)('0' + x);
    }
    return end;
}

#endif
