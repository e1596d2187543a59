/* memtap export core: CSV formatting of record columns. The Python side (memtap/export/csv.py) mirrors these
 * structures in ctypes. */
#ifndef MEMTAP_EXPORT_CSV_H
#define MEMTAP_EXPORT_CSV_H

#include <stddef.h>
#include <stdint.h>

enum mx_format {
    MX_DEC,  /* unsigned decimal */
    MX_HEX,  /* 0x-prefixed lowercase hexadecimal without leading zeros */
    MX_BOOL, /* "true" when value & mask, else "false" */
    MX_NAME, /* names[value]: a table of 256 entries of MX_NAME_WIDTH bytes, a name then its length in the last */
};

#define MX_NAME_WIDTH 16
#define MX_FIELD_MAX 24 /* room one field takes at most while written: 20 decimal digits and a separator, a
                         * whole name entry */

/* One output column: `width`-byte unsigned values, and a byte per row saying whether it is valid (NULL: all are);
 * a null is an empty field. */
struct mx_column {
    const void *data;
    const uint8_t *valid;
    const char *names;
    uint8_t width;
    uint8_t format;
    uint8_t mask;
    uint8_t reserved[5];
};

/* Rows [first, n) of the columns as CSV lines into out, as many as surely fit in cap bytes; *rows gets how many
 * were written. Returns the bytes written. */
size_t mx_csv(const struct mx_column *cols, int ncols, size_t first, size_t n, char *out, size_t cap,
              size_t *rows);

#endif
