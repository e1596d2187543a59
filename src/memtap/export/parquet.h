/* memtap export core: encodes one column of a Parquet row group into compressed data pages. Python
 * (memtap/export/parquet_file.py) lays out the file around them: page headers, dictionary pages and the footer,
 * which are a few hundred bytes per row group; this file does the per-value work. The Python side mirrors these
 * structures in ctypes. */
#ifndef MEMTAP_EXPORT_PARQUET_H
#define MEMTAP_EXPORT_PARQUET_H

#include <stddef.h>
#include <stdint.h>

enum mx_pq_encoding {
    MX_PQ_DELTA, /* DELTA_BINARY_PACKED of 64-bit values (width 8) or 32-bit ones (width 1, 2 or 4) */
    MX_PQ_BSS,   /* BYTE_STREAM_SPLIT of 8-byte values */
    MX_PQ_DICT,  /* RLE_DICTIONARY: indices dict_index[value] of dict_bits bits (u8 values) */
    MX_PQ_BOOL,  /* PLAIN booleans: value & mask (u8 values) */
};

/* A column to encode: n values of `width` bytes; valid: a byte per row, 0 for a null (NULL: none is). Every
 * column is OPTIONAL (one definition level per row); only valid values are encoded. */
struct mx_pq_column {
    const void *data;
    const uint8_t *valid;
    const uint8_t *dict_index;
    uint8_t width;
    uint8_t encoding;
    uint8_t mask;
    uint8_t dict_bits;
    int32_t level;      /* zstd level */
    uint32_t page_rows; /* rows per data page (the last one may have fewer) */
    uint8_t stats;      /* compute min and max (DELTA and BSS columns) */
    uint8_t reserved[3];
};

/* One data page as written to out: its rows (nulls included), its body before and after compression. */
struct mx_pq_page {
    uint64_t rows;
    uint64_t nulls;
    uint64_t raw_len;
    uint64_t stored_len;
};

/* The whole column chunk: min and max of the valid values (as unsigned integers; DELTA and BSS columns with stats),
 * the nulls, the pages written, and 0 or a negative error (-1 out of memory, -2 out or pages too small, -3 zstd). */
struct mx_pq_result {
    uint64_t min;
    uint64_t max;
    uint64_t nulls;
    uint32_t pages;
    int32_t error;
};

/* Bytes of out the column's pages may need at most. */
size_t mx_pq_bound(const struct mx_pq_column *c, size_t n);
/* Encode and zstd-compress the column's pages one after another into out; returns the bytes written. */
size_t mx_pq_encode(const struct mx_pq_column *c, size_t n, uint8_t *out, size_t cap, struct mx_pq_page *pages,
                    size_t max_pages, struct mx_pq_result *res);

#endif
