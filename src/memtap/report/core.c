/*
 * The report's aggregation core: one pass over batches of record columns into hash tables of counts whose size
 * grows with the trace's footprint and the number of time bins, never with its length.
 *
 *   pages   4 KiB page -> fetch, load, store touches, MMIO touches      (an access that straddles a boundary
 *   lines   64 B line  -> fetch, load, store touches, masks of the vCPUs  touches both units, as memtap stats
 *                         that loaded and stored it (bit 63: 63 and up)    counts them)
 *   pcs     pc         -> executed (fetch records), loads, stores issued
 *   heat    (vaddr >> addr_shift, pos >> time_shift) -> fetch, load, store accesses (by first byte)
 *   time    pos >> time_shift -> records per kind
 *   vcpus   vcpu << 8 | privilege index -> records per kind, highest icount + 1, ~lowest icount
 *
 * time_shift grows so that the trace's positions span at most max_bins bins; addr_shift grows while the heat
 * table holds more than heat_cap cells. Both only merge whole cells, so every count stays exact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

#define KINDS 16
#define KIND_FETCH 0
#define KIND_LOAD 1
#define KIND_STORE 2
#define PRIV_UNKNOWN 4
#define FLAG_IO 0x01

enum { T_PAGES, T_LINES, T_PCS, T_HEAT, T_TIME, T_VCPUS, T_COUNT };

/* Open addressing, linear probing; a slot is its two key words (the second 0 for one-word keys, with USED set
 * in every taken slot), then its values, so a probe touches one cache line. */
struct tab {
    uint64_t *slots;
    size_t cap, n;     /* cap: a power of two, at least twice n */
    int kw, vw, sw;    /* key words exported, value words, words per slot */
    uint64_t *last;    /* the last row looked up (runs of one key skip the hash) */
};

#define USED (1ull << 63)

struct rp_cols {
    const uint64_t *pos, *icount, *vaddr, *pc;
    const uint16_t *vcpu;
    const uint8_t *kind, *size, *priv, *flags;
};

struct rp {
    struct tab t[T_COUNT];
    uint64_t pos_min, pos_max;
    int seen;
    unsigned time_shift, addr_shift;
    uint64_t max_bins, heat_cap;
};

static inline uint64_t mix(uint64_t k0, uint64_t k1)
{
    uint64_t h = (k0 * 0x9E3779B97F4A7C15ull ^ k1) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static int tab_init(struct tab *t, int kw, int vw, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->kw = kw;
    t->vw = vw;
    t->sw = 2 + vw;
    t->cap = cap;
    t->slots = calloc(cap * t->sw, sizeof(uint64_t));
    return t->slots ? 0 : -1;
}

static void tab_free(struct tab *t)
{
    free(t->slots);
    t->slots = t->last = NULL;
}

/* The slot of key (k0, k1 without USED), taken or the empty one where it belongs. */
static inline uint64_t *tab_slot(const struct tab *t, uint64_t k0, uint64_t k1)
{
    size_t i = mix(k0, k1) & (t->cap - 1);
    for (;;) {
        uint64_t *s = &t->slots[i * t->sw];
        if (!s[1] || (s[0] == k0 && s[1] == (k1 | USED)))
            return s;
        i = (i + 1) & (t->cap - 1);
    }
}

static inline void tab_claim(struct tab *t, uint64_t *s, uint64_t k0, uint64_t k1)
{
    if (!s[1]) {
        s[0] = k0;
        s[1] = k1 | USED;
        t->n++;
    }
}

/* Move every row of *t into a fresh table of capacity cap, each key mapped by (shift0, shift1) and the values
 * of keys that become equal summed. */
static int tab_rebuild(struct tab *t, size_t cap, unsigned shift0, unsigned shift1)
{
    struct tab nt;
    if (tab_init(&nt, t->kw, t->vw, cap))
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        const uint64_t *s = &t->slots[i * t->sw];
        if (!s[1])
            continue;
        uint64_t k0 = shift0 < 64 ? s[0] >> shift0 : 0;
        uint64_t k1 = shift1 < 63 ? (s[1] & ~USED) >> shift1 : 0;
        uint64_t *d = tab_slot(&nt, k0, k1);
        tab_claim(&nt, d, k0, k1);
        for (int v = 0; v < t->vw; v++)
            d[2 + v] += s[2 + v];
    }
    tab_free(t);
    *t = nt;
    return 0;
}

/* The values of key (k0, k1 < 2^63): a new zeroed row if absent; NULL when out of memory. */
static inline uint64_t *tab_get(struct tab *t, uint64_t k0, uint64_t k1)
{
    if (t->last && t->last[0] == k0 && t->last[1] == (k1 | USED))
        return t->last + 2;
    if (2 * (t->n + 1) > t->cap && tab_rebuild(t, 2 * t->cap, 0, 0))
        return NULL;
    uint64_t *s = tab_slot(t, k0, k1);
    tab_claim(t, s, k0, k1);
    t->last = s;
    return s + 2;
}

static const int table_shape[T_COUNT][2] = {
    [T_PAGES] = {1, 4}, [T_LINES] = {1, 5}, [T_PCS] = {1, 3},
    [T_HEAT] = {2, 3}, [T_TIME] = {1, KINDS}, [T_VCPUS] = {1, KINDS + 2},
};

EXPORT void rp_free(struct rp *r)
{
    if (!r)
        return;
    for (int i = 0; i < T_COUNT; i++)
        tab_free(&r->t[i]);
    free(r);
}

EXPORT struct rp *rp_new(uint64_t max_bins, uint64_t heat_cap)
{
    struct rp *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->max_bins = max_bins < 1 ? 1 : max_bins;
    r->heat_cap = heat_cap < 2 * r->max_bins ? 2 * r->max_bins : heat_cap;
    r->addr_shift = 6;
    for (int i = 0; i < T_COUNT; i++)
        if (tab_init(&r->t[i], table_shape[i][0], table_shape[i][1], 1024)) {
            rp_free(r);
            return NULL;
        }
    return r;
}

/* Widen the time bins until [pos_min, pos_max] spans at most max_bins of them. */
static int fit_time(struct rp *r)
{
    unsigned shift = r->time_shift;
    while (shift < 63 && (r->pos_max >> shift) - (r->pos_min >> shift) + 1 > r->max_bins)
        shift++;
    if (shift == r->time_shift)
        return 0;
    unsigned d = shift - r->time_shift;
    r->time_shift = shift;
    return tab_rebuild(&r->t[T_TIME], r->t[T_TIME].cap, d, 0) ||
           tab_rebuild(&r->t[T_HEAT], r->t[T_HEAT].cap, 0, d);
}

/* Halve the heat map's address resolution while it holds more than heat_cap cells. */
static int fit_heat(struct rp *r)
{
    while (r->t[T_HEAT].n > r->heat_cap && r->addr_shift < 64) {
        r->addr_shift++;
        if (tab_rebuild(&r->t[T_HEAT], r->t[T_HEAT].cap, 1, 0))
            return -1;
    }
    return 0;
}

/* Count one touch of unit key (page or line) by an access of kind k from vcpu. */
static int touch(struct tab *t, uint64_t key, unsigned k, unsigned vcpu, int io, int is_line)
{
    uint64_t *v = tab_get(t, key, 0);
    if (!v)
        return -1;
    v[k]++;
    if (is_line) {
        if (k != KIND_FETCH)   /* the vCPUs that loaded and stored it (data sharing; fetches are not) */
            v[k == KIND_STORE ? 4 : 3] |= 1ull << (vcpu < 63 ? vcpu : 63);
    } else if (io) {
        v[3]++;
    }
    return 0;
}

/* Aggregate n records given as columns; 0, or -1 when out of memory (the counts are then incomplete). */
EXPORT int rp_feed(struct rp *r, const struct rp_cols *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned k = c->kind[i] < KINDS ? c->kind[i] : KINDS - 1;
        uint64_t pos = c->pos[i];
        if (!r->seen || pos < r->pos_min || pos > r->pos_max) {
            if (!r->seen || pos < r->pos_min)
                r->pos_min = pos;
            if (!r->seen || pos > r->pos_max)
                r->pos_max = pos;
            r->seen = 1;
            if (fit_time(r))
                return -1;
        }
        uint64_t tbin = pos >> r->time_shift;
        uint64_t vkey = (uint64_t)c->vcpu[i] << 8 | (c->priv[i] <= PRIV_UNKNOWN ? c->priv[i] : PRIV_UNKNOWN);
        uint64_t *v = tab_get(&r->t[T_VCPUS], vkey, 0);
        uint64_t *tv = v ? tab_get(&r->t[T_TIME], tbin, 0) : NULL;
        if (!tv)
            return -1;
        v[k]++;
        tv[k]++;
        if (c->icount[i] + 1 > v[KINDS])
            v[KINDS] = c->icount[i] + 1;
        if (~c->icount[i] > v[KINDS + 1])
            v[KINDS + 1] = ~c->icount[i];
        if (k > KIND_STORE)
            continue;
        uint64_t a = c->vaddr[i];
        uint64_t last = a + (c->size[i] ? c->size[i] : 1) - 1;
        if (last < a)
            last = a;
        int io = (c->flags[i] & FLAG_IO) != 0;
        unsigned vcpu = c->vcpu[i];
        if (touch(&r->t[T_PAGES], a >> 12, k, vcpu, io, 0) ||
            ((last >> 12) != (a >> 12) && touch(&r->t[T_PAGES], last >> 12, k, vcpu, io, 0)) ||
            touch(&r->t[T_LINES], a >> 6, k, vcpu, io, 1) ||
            ((last >> 6) != (a >> 6) && touch(&r->t[T_LINES], last >> 6, k, vcpu, io, 1)))
            return -1;
        uint64_t *p = tab_get(&r->t[T_PCS], c->pc[i], 0);
        uint64_t *h = p ? tab_get(&r->t[T_HEAT], r->addr_shift < 64 ? a >> r->addr_shift : 0, tbin) : NULL;
        if (!h)
            return -1;
        p[k]++;
        h[k]++;
        if (r->t[T_HEAT].n > r->heat_cap && fit_heat(r))
            return -1;
    }
    return 0;
}

/* pos_min, pos_max, time_shift, addr_shift, whether any record was seen. */
EXPORT void rp_state(const struct rp *r, uint64_t out[5])
{
    out[0] = r->pos_min;
    out[1] = r->pos_max;
    out[2] = r->time_shift;
    out[3] = r->addr_shift;
    out[4] = r->seen;
}

/* Rows in table id and the words (keys, then values) of each. */
EXPORT size_t rp_rows(const struct rp *r, int id, int *words)
{
    if (id < 0 || id >= T_COUNT)
        return 0;
    *words = r->t[id].kw + r->t[id].vw;
    return r->t[id].n;
}

/* Copy table id's rows (keys, then values; in hash order) to out, which holds rp_rows() rows. */
EXPORT void rp_export(const struct rp *r, int id, uint64_t *out)
{
    const struct tab *t = &r->t[id];
    for (size_t i = 0; i < t->cap; i++) {
        const uint64_t *s = &t->slots[i * t->sw];
        if (!s[1])
            continue;
        out[0] = s[0];
        if (t->kw > 1)
            out[1] = s[1] & ~USED;
        memcpy(out + t->kw, s + 2, t->vw * sizeof(uint64_t));
        out += t->kw + t->vw;
    }
}
