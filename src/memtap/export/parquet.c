/* memtap export core: a column of a Parquet row group as zstd-compressed data pages (format version 1 pages:
 * definition levels, then the values). The encodings follow the Parquet specification's Encodings.md:
 * the RLE/bit-packing hybrid (definition levels, dictionary indices), DELTA_BINARY_PACKED, BYTE_STREAM_SPLIT and
 * PLAIN booleans. Python writes everything else of the file (parquet_file.py).
 */
#include "parquet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "values.h"
#include <zstd.h>

#define EXPORT __attribute__((visibility("default")))
#define DELTA_BLOCK 128
#define DELTA_MINIBLOCKS 4
#define DELTA_MINI (DELTA_BLOCK / DELTA_MINIBLOCKS)

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static uint8_t *put_zigzag(uint8_t *o, int64_t v)
{
    return put_varint(o, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static unsigned bits_for(uint64_t v)
{
    return v ? 64 - (unsigned)__builtin_clzll(v) : 0;
}

/* count values of w bits each, least significant bit first; count * w is a multiple of 8 */
static uint8_t *pack64(uint8_t *o, const uint64_t *v, size_t count, unsigned w)
{
    if (!w)
        return o;
    if (w <= 56) { /* the usual case: the accumulator never holds more than 63 bits */
        uint64_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < count; i++) {
            acc |= v[i] << bits;
            bits += w;
            while (bits >= 8) {
                *o++ = (uint8_t)acc;
                acc >>= 8;
                bits -= 8;
            }
        }
        return o;
    }
    unsigned __int128 acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < count; i++) {
        acc |= (unsigned __int128)v[i] << bits;
        bits += w;
        while (bits >= 8) {
            *o++ = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    return o;
}

/* 8 values of w <= 8 bits (zeros past n) in w bytes */
static uint8_t *pack8(uint8_t *o, const uint8_t *v, size_t avail, unsigned w)
{
    uint64_t acc = 0;
    for (size_t k = 0; k < 8 && k < avail; k++)
        acc |= (uint64_t)v[k] << (k * w);
    for (unsigned b = 0; b < w; b++)
        *o++ = (uint8_t)(acc >> (8 * b));
    return o;
}

static int eight_equal(const uint8_t *v, size_t i, size_t n)
{
    if (n - i < 8)
        return 0;
    uint64_t x;
    memcpy(&x, v + i, 8);
    return x == v[i] * 0x0101010101010101ULL;
}

/* The RLE/bit-packing hybrid of n values of w (1..8) bits: runs of 8 or more equal values as RLE runs, the rest in
 * bit-packed groups of 8 (the last one padded with zeros). */
static uint8_t *rle_hybrid(uint8_t *o, const uint8_t *v, size_t n, unsigned w)
{
    size_t i = 0;
    while (i < n) {
        if (eight_equal(v, i, n)) {
            size_t r = 8;
            while (i + r < n && v[i + r] == v[i])
                r++;
            o = put_varint(o, (uint64_t)r << 1);
            *o++ = v[i];
            i += r;
            continue;
        }
        size_t j = i;
        do
            j += 8;
        while (j < n && !eight_equal(v, j, n) && j - i < 8 * 4096);
        size_t end = j < n ? j : n, groups = (end - i + 7) / 8;
        o = put_varint(o, (uint64_t)groups << 1 | 1);
        for (size_t g = 0; g < groups; g++)
            o = pack8(o, v + i + 8 * g, end - i - 8 * g, w);
        i = end;
    }
    return o;
}

static uint8_t *delta_binary_packed(uint8_t *o, const uint64_t *v, size_t m)
{
    o = put_varint(o, DELTA_BLOCK);
    o = put_varint(o, DELTA_MINIBLOCKS);
    o = put_varint(o, m);
    o = put_zigzag(o, m ? (int64_t)v[0] : 0);
    for (size_t b = 1; b < m; b += DELTA_BLOCK) {
        size_t cnt = m - b < DELTA_BLOCK ? m - b : DELTA_BLOCK;
        int64_t d[DELTA_BLOCK], min = INT64_MAX;
        for (size_t k = 0; k < cnt; k++) {
            d[k] = (int64_t)(v[b + k] - v[b + k - 1]); /* wraps like the decoder's addition */
            min = d[k] < min ? d[k] : min;
        }
        o = put_zigzag(o, min);
        uint8_t *widths = o;
        o += DELTA_MINIBLOCKS;
        for (size_t mb = 0; mb < DELTA_MINIBLOCKS; mb++) {
            size_t start = mb * DELTA_MINI;
            widths[mb] = 0;
            if (start >= cnt)
                continue; /* no bytes for the miniblocks after the last value */
            uint64_t p[DELTA_MINI], any = 0;
            for (size_t k = 0; k < DELTA_MINI; k++) {
                p[k] = start + k < cnt ? (uint64_t)d[start + k] - (uint64_t)min : 0;
                any |= p[k];
            }
            widths[mb] = (uint8_t)bits_for(any);
            o = pack64(o, p, DELTA_MINI, widths[mb]);
        }
    }
    return o;
}

static uint8_t *byte_stream_split(uint8_t *o, const uint64_t *v, size_t m)
{
    uint8_t *s0 = o, *s1 = o + m, *s2 = o + 2 * m, *s3 = o + 3 * m, *s4 = o + 4 * m, *s5 = o + 5 * m,
            *s6 = o + 6 * m, *s7 = o + 7 * m;
    for (size_t i = 0; i < m; i++) {
        uint64_t x = v[i];
        s0[i] = (uint8_t)x;
        s1[i] = (uint8_t)(x >> 8);
        s2[i] = (uint8_t)(x >> 16);
        s3[i] = (uint8_t)(x >> 24);
        s4[i] = (uint8_t)(x >> 32);
        s5[i] = (uint8_t)(x >> 40);
        s6[i] = (uint8_t)(x >> 48);
        s7[i] = (uint8_t)(x >> 56);
    }
    return o + 8 * m;
}

static uint8_t *plain_bools(uint8_t *o, const uint8_t *v, size_t m)
{
    for (size_t i = 0; i < m; i += 8) {
        uint8_t byte = 0;
        for (size_t k = 0; k < 8 && i + k < m; k++)
            byte |= (uint8_t)(v[i + k] << k);
        *o++ = byte;
    }
    return o;
}

/* The most one page's body takes before compression: definition levels, then values, of which DELTA takes the
 * most (a miniblock always holds 32 values of up to 64 bits, even when fewer remain). */
static size_t raw_bound(size_t rows)
{
    size_t levels = 4 + (rows / 8 + 2) * 3;
    size_t delta = 32 + (rows / DELTA_BLOCK + 1) * (10 + DELTA_MINIBLOCKS) + (rows / DELTA_MINI + 1) * DELTA_MINI * 8;
    return levels + delta + 64;
}

/* Per-thread working memory: a zstd context and a page's buffers, grown as needed and freed when the thread
 * exits (allocating them per call cost more in page faults than the encoding itself). */
struct scratch {
    ZSTD_CCtx *cctx;
    size_t rows;
    uint8_t *raw;
    uint64_t *vals;
    uint8_t *small;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct scratch *sc = p;
    ZSTD_freeCCtx(sc->cctx);
    free(sc->raw);
    free(sc->vals);
    free(sc->small);
    free(sc);
}

static void scratch_key_make(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

static struct scratch *scratch(size_t rows)
{
    pthread_once(&scratch_once, scratch_key_make);
    struct scratch *sc = pthread_getspecific(scratch_key);
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc || pthread_setspecific(scratch_key, sc)) {
            free(sc);
            return NULL;
        }
    }
    if (!sc->cctx && !(sc->cctx = ZSTD_createCCtx()))
        return NULL;
    if (sc->rows >= rows)
        return sc;
    free(sc->raw);
    free(sc->vals);
    free(sc->small);
    sc->raw = malloc(raw_bound(rows));
    sc->vals = malloc(rows * sizeof *sc->vals);
    sc->small = malloc(rows);
    sc->rows = sc->raw && sc->vals && sc->small ? rows : 0;
    return sc->rows ? sc : NULL;
}

EXPORT size_t mx_pq_bound(const struct mx_pq_column *c, size_t n)
{
    size_t rows = c->page_rows ? c->page_rows : 1, pages = (n + rows - 1) / rows;
    return pages * ZSTD_compressBound(raw_bound(rows));
}

/* The page's valid values: 64-bit ones in *vals (pointed at the column itself when it has no nulls), or what the
 * encoding stores of u8 ones in small (dictionary indices, 0/1 booleans). Returns how many. */
static size_t gather(const struct mx_pq_column *c, size_t first, size_t rows, const uint8_t *valid, uint64_t **vals,
                     uint8_t *small)
{
    size_t m = 0;
    if (c->encoding == MX_PQ_DICT || c->encoding == MX_PQ_BOOL) {
        const uint8_t *d = (const uint8_t *)c->data + first;
        unsigned shift = c->mask ? (unsigned)__builtin_ctz(c->mask) : 0;
        for (size_t i = 0; i < rows; i++) {
            small[m] = c->encoding == MX_PQ_DICT ? c->dict_index[d[i]] : (uint8_t)((d[i] >> shift) & 1);
            m += !valid || valid[i];
        }
        return m;
    }
    if (c->width == 8) {
        const uint64_t *d = (const uint64_t *)c->data + first;
        if (!valid) {
            *vals = (uint64_t *)d;
            return rows;
        }
        uint64_t *v = *vals;
        for (size_t i = 0; i < rows; i++) {
            v[m] = d[i];
            m += valid[i] != 0;
        }
        return m;
    }
    for (size_t i = 0; i < rows; i++)
        if (!valid || valid[i])
            (*vals)[m++] = mx_load(c->data, c->width, first + i);
    return m;
}

/* One page's body: definition levels, then the valid values; returns its end. */
static uint8_t *page_body(const struct mx_pq_column *c, size_t first, size_t rows, uint8_t *raw, uint64_t *vals,
                          uint8_t *small, struct mx_pq_page *pg, struct mx_pq_result *res)
{
    uint8_t *o = raw + 4;
    const uint8_t *valid = c->valid ? c->valid + first : NULL;
    if (valid) {
        o = rle_hybrid(o, valid, rows, 1);
    } else {
        o = put_varint(o, (uint64_t)rows << 1);
        *o++ = 1;
    }
    uint32_t levels = (uint32_t)(o - raw - 4);
    memcpy(raw, &levels, 4);
    size_t m = gather(c, first, rows, valid, &vals, small);
    pg->rows = rows;
    pg->nulls = rows - m;
    res->nulls += rows - m;
    if (c->stats && (c->encoding == MX_PQ_DELTA || c->encoding == MX_PQ_BSS)) {
        uint64_t lo = res->min, hi = res->max;
        for (size_t i = 0; i < m; i++) {
            lo = vals[i] < lo ? vals[i] : lo;
            hi = vals[i] > hi ? vals[i] : hi;
        }
        res->min = lo;
        res->max = hi;
    }
    switch (c->encoding) {
    case MX_PQ_DELTA:
        return delta_binary_packed(o, vals, m);
    case MX_PQ_BSS:
        return byte_stream_split(o, vals, m);
    case MX_PQ_DICT:
        *o++ = c->dict_bits;
        return rle_hybrid(o, small, m, c->dict_bits);
    default:
        return plain_bools(o, small, m);
    }
}

EXPORT size_t mx_pq_encode(const struct mx_pq_column *c, size_t n, uint8_t *out, size_t cap,
                           struct mx_pq_page *pages, size_t max_pages, struct mx_pq_result *res)
{
    memset(res, 0, sizeof *res);
    res->min = UINT64_MAX;
    size_t per = c->page_rows ? c->page_rows : 1;
    if ((n + per - 1) / per > max_pages || cap < mx_pq_bound(c, n) || c->dict_bits > 8) {
        res->error = -2;
        return 0;
    }
    struct scratch *sc = scratch(per);
    size_t used = 0;
    if (!sc) {
        res->error = -1;
        return 0;
    }
    uint8_t *raw = sc->raw, *small = sc->small;
    uint64_t *vals = sc->vals;
    for (size_t first = 0; first < n; first += per) {
        size_t rows = n - first < per ? n - first : per;
        struct mx_pq_page *pg = &pages[res->pages++];
        uint8_t *end = page_body(c, first, rows, raw, vals, small, pg, res);
        pg->raw_len = (uint64_t)(end - raw);
        size_t z = ZSTD_compressCCtx(sc->cctx, out + used, cap - used, raw, pg->raw_len, c->level);
        if (ZSTD_isError(z)) {
            res->error = -3;
            return used;
        }
        pg->stored_len = z;
        used += z;
    }
    return used;
}
