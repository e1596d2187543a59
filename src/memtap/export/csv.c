/* memtap export core: formats columns of records as CSV text, called from Python (memtap/export/csv.py) through
 * ctypes. Python decides what each column means and which values are null; this file only prints them, since
 * printing 14 fields per row is the part of a CSV export that Python and pyarrow's CSV writer do slowly.
 */
#include "csv.h"

#include <string.h>

#include "values.h"

#define EXPORT __attribute__((visibility("default")))

/* 0x and lowercase hex digits */
static char *put_hex(char *p, uint64_t v)
{
    p[0] = '0';
    p[1] = 'x';
    return mx_put_hex(p + 2, v, 1);
}

static char *put_field(char *p, const struct mx_column *c, size_t i)
{
    if (c->valid && !c->valid[i])
        return p;
    uint64_t v = mx_load(c->data, c->width, i);
    switch (c->format) {
    case MX_DEC:
        return mx_put_dec(p, v);
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
