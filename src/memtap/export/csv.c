/* memtap export core: formats columns of records as CSV text, called from Python (memtap/export/csv.py) through
 * ctypes. Python decides what each column means and which values are null; this file only prints them, since
 * printing 14 fields per row is the part of a CSV export that Python and pyarrow's CSV writer do slowly.
 */
#include "csv.h"

#include <string.h>

#include "values.h"

#define EXPORT __attribute__((visibility("default")))

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static unsigned decimal_digits(uint64_t v)
{
    static const uint64_t P10[] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                   100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
                                   1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
                                   1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
                                   1000000000000000000ULL, 10000000000000000000ULL};
    unsigned n = 1;
    while (n < 20 && v >= P10[n])
        n++;
    return n;
}

/* Digits are written from the end of the field backwards, two at a time; no library calls on this path. */
static char *put_dec(char *p, uint64_t v)
{
    char *end = p + decimal_digits(v), *q = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        q[0] = DIGIT_PAIRS[2 * r];
        q[1] = DIGIT_PAIRS[2 * r + 1];
    }
    if (v >= 10) {
        q[-2] = DIGIT_PAIRS[2 * v];
        q[-1] = DIGIT_PAIRS[2 * v + 1];
    } else {
        q[-1] = (char)('0' + v);
    }
    return end;
}

static char *put_hex(char *p, uint64_t v)
{
    static const char HEX[] = "0123456789abcdef";
    unsigned digits = v ? (64 - (unsigned)__builtin_clzll(v) + 3) / 4 : 1;
    p[0] = '0';
    p[1] = 'x';
    char *end = p + 2 + digits;
    for (char *q = end; q > p + 2; v >>= 4)
        *--q = HEX[v & 15];
    return end;
}

static char *put_field(char *p, const struct mx_column *c, size_t i)
{
    if (c->valid && !c->valid[i])
        return p;
    uint64_t v = mx_load(c->data, c->width, i);
    switch (c->format) {
    case MX_DEC:
        return put_dec(p, v);
    case MX_HEX:
        return put_hex(p, v);
    case MX_BOOL:
        if (v & c->mask) {
            memcpy(p, "true", 4);
            return p + 4;
        }
        memcpy(p, "false", 5);
        return p + 5;
    default: { /* MX_NAME: fixed-width entries, the name's length in the last byte; copy all, keep the name */
        const char *name = c->names + (v & 0xff) * MX_NAME_WIDTH;
        memcpy(p, name, MX_NAME_WIDTH);
        return p + (unsigned char)name[MX_NAME_WIDTH - 1];
    }
    }
}

EXPORT size_t mx_csv(const struct mx_column *cols, int ncols, size_t first, size_t n, char *out, size_t cap,
                     size_t *rows)
{
    char *p = out, *end = out + cap;
    size_t i = first;
    for (; i < n && (size_t)(end - p) >= (size_t)ncols * MX_FIELD_MAX; i++) {
        for (int k = 0; k < ncols; k++) {
            p = put_field(p, &cols[k], i);
            *p++ = k + 1 < ncols ? ',' : '\n';
        }
    }
    *rows = i - first;
    return (size_t)(p - out);
}
