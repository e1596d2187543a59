/* memtap export core: formats columns of records as CSV text, called from Python (memtap/export/csv.py) through
 * ctypes. Python decides what each column means and which values are null; this file only prints them, since
 * printing 14 fields per row is the part of a CSV export that Python and pyarrow's CSV writer do slowly.
 */
#include "csv.h"

#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static uint64_t load(const void *data, unsigned width, size_t i)
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

static char *put_dec(char *p, uint64_t v)
{
    char tmp[20];
    char *t = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        t -= 2;
        memcpy(t, DIGIT_PAIRS + 2 * r, 2);
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, DIGIT_PAIRS + 2 * v, 2);
    } else {
        *--t = (char)('0' + v);
    }
    size_t len = (size_t)(tmp + sizeof tmp - t);
    memcpy(p, t, len);
    return p + len;
}

static char *put_hex(char *p, uint64_t v)
{
    static const char HEX[] = "0123456789abcdef";
    int digits = v ? (64 - __builtin_clzll(v) + 3) / 4 : 1;
    *p++ = '0';
    *p++ = 'x';
    for (int d = digits - 1; d >= 0; d--)
        *p++ = HEX[(v >> (4 * d)) & 15];
    return p;
}

static char *put_field(char *p, const struct mx_column *c, size_t i)
{
    if (c->valid && !c->valid[i])
        return p;
    uint64_t v = load(c->data, c->width, i);
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
    default: { /* MX_NAME: a fixed-width table of NUL-padded names indexed by the value */
        const char *name = c->names + (v & 0xff) * MX_NAME_WIDTH;
        size_t len = strnlen(name, MX_NAME_WIDTH);
        memcpy(p, name, len);
        return p + len;
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
