/* memtap cache-line sharing analysis core: per-line state in open-addressing hash tables, driven by whole
 * batches of record columns per call. core.h describes the two passes; docs/sharing.md the rules.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define NO_VLINE UINT64_MAX
#define NO_VCPU UINT16_MAX
#define PREFETCH_AHEAD 16 /* records */

/* Every line seen: 32 bytes. */
struct line {
    uint64_t key;          /* line number + 1; 0: an empty slot */
    uint64_t holders;      /* vCPUs holding a valid copy, caches infinite and fully associative */
    uint32_t first_sharer;
    uint32_t detail;       /* index + 1 of its struct sh_detail; 0: none (one vCPU and one sharer so far) */
    uint16_t first_vcpu;
    uint8_t flags;         /* SH_MULTI_*, SH_WRITTEN */
    uint8_t writer;        /* vCPU + 1 of the last store; 0: none yet */
    uint8_t recent[2];     /* vCPU + 1 of the last two distinct accessors since the last store (0: none) */
};
_Static_assert(sizeof(struct line) == 32, "a line entry is 32 bytes");

struct runs {
    uint64_t *small;       /* SH_RUN_SMALL counters */
    uint64_t *big;
    size_t nbig, cap;
};

struct sh {
    unsigned shift;
    struct line *lines;
    size_t nlines, cap_lines;
    struct line *hot;      /* the entry found last (consecutive accesses mostly stay in one line); NULL after
                            * the table moved */
    uint64_t multi_vcpu, multi_sharer;
    struct sh_detail *details;
    size_t ndetails, cap_details;
    uint32_t *dslot;       /* pass 2: hash of the detail lines (index + 1, 0 empty); the line table is freed */
    size_t cap_dslot;
    uint64_t *sharer_ids;  /* dense index -> sharer id */
    uint32_t *sharer_slot; /* hash of sharer ids: index + 1, 0 empty */
    size_t nsharers, cap_sharer_slots;
    uint64_t last_sharer_id;
    uint32_t last_sharer;  /* dense index of last_sharer_id; UINT32_MAX: none yet */
    struct sh_row *rows;
    size_t nrows, cap_rows;
    struct runs runs[2];
    uint16_t run_vcpu;     /* the global run (runs[0]) */
    uint64_t run_len;
    uint64_t c[SH_NCOUNTERS];
    uint64_t matrix[SH_MAX_VCPUS * SH_MAX_VCPUS]; /* transfers [from * SH_MAX_VCPUS + to] */
};

static const char COUNTER_NAMES[] =
    "data,io,no_paddr,pieces,transfers,transfer_records,movement_records";

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

/* --- lines ----------------------------------------------------------------------------------------------- */

static int lines_grow(struct sh *s)
{
    size_t cap = s->cap_lines ? 2 * s->cap_lines : 1024;
    struct line *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < s->cap_lines; i++) {
        if (!s->lines[i].key)
            continue;
        size_t j = mix(s->lines[i].key) & (cap - 1);
        while (t[j].key)
            j = (j + 1) & (cap - 1);
        t[j] = s->lines[i];
    }
    free(s->lines);
    s->lines = t;
    s->cap_lines = cap;
    s->hot = NULL;
    return 0;
}

/* Pass 2's index: only the lines with a detail, small enough to stay in cache, instead of every line. */
static int detail_index_build(struct sh *s)
{
    size_t cap = 16;
    while (cap < 2 * s->ndetails)
        cap *= 2;
    if (!(s->dslot = calloc(cap, sizeof *s->dslot)))
        return -1;
    s->cap_dslot = cap;
    for (size_t i = 0; i < s->ndetails; i++) {
        size_t j = mix(s->details[i].line + 1) & (cap - 1);
        while (s->dslot[j])
            j = (j + 1) & (cap - 1);
        s->dslot[j] = (uint32_t)i + 1;
    }
    free(s->lines); /* pass 1 is over */
    s->lines = NULL;
    s->cap_lines = 0;
    s->hot = NULL;
    return 0;
}

static struct sh_detail *detail_find(const struct sh *s, uint64_t line)
{
    size_t mask = s->cap_dslot - 1;
    for (size_t j = mix(line + 1) & mask; s->dslot[j]; j = (j + 1) & mask)
        if (s->details[s->dslot[j] - 1].line == line)
            return &s->details[s->dslot[j] - 1];
    return NULL;
}

/* The line's entry, made when new (*fresh = 1); NULL when out of memory. */
static struct line *line_get(struct sh *s, uint64_t line, int *fresh)
{
    uint64_t key = line + 1;
    if (s->hot && s->hot->key == key) {
        *fresh = 0;
        return s->hot;
    }
    if (8 * (s->nlines + 1) > 5 * s->cap_lines && lines_grow(s))
        return NULL;
    size_t mask = s->cap_lines - 1;
    size_t j = mix(key) & mask;
    while (s->lines[j].key && s->lines[j].key != key)
        j = (j + 1) & mask;
    *fresh = !s->lines[j].key;
    if (*fresh) {
        s->lines[j].key = key;
        s->nlines++;
    }
    return s->hot = &s->lines[j];
}

static struct sh_detail *detail_new(struct sh *s, struct line *e, uint64_t line)
{
    if (s->ndetails == s->cap_details) {
        size_t cap = s->cap_details ? 2 * s->cap_details : 256;
        struct sh_detail *d = realloc(s->details, cap * sizeof *d);
        if (!d)
            return NULL;
        s->details = d;
        s->cap_details = cap;
    }
    struct sh_detail *d = &s->details[s->ndetails++];
    memset(d, 0, sizeof *d);
    d->line = line;
    d->vline = NO_VLINE;
    d->last_vcpu = NO_VCPU;
    e->detail = (uint32_t)s->ndetails;
    return d;
}

/* --- sharers --------------------------------------------------------------------------------------------- */

static int sharers_grow(struct sh *s)
{
    size_t cap = s->cap_sharer_slots ? 2 * s->cap_sharer_slots : 64;
    uint32_t *slot = calloc(cap, sizeof *slot);
    uint64_t *ids = realloc(s->sharer_ids, cap / 2 * sizeof *ids);
    if (!slot || !ids) {
        free(slot);
        if (ids)
            s->sharer_ids = ids;
        return -1;
    }
    s->sharer_ids = ids;
    for (size_t i = 0; i < s->nsharers; i++) {
        size_t j = mix(ids[i]) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(s->sharer_slot);
    s->sharer_slot = slot;
    s->cap_sharer_slots = cap;
    return 0;
}

/* Dense index of a sharer id; UINT32_MAX when out of memory. */
static uint32_t sharer_index(struct sh *s, uint64_t id)
{
    if (s->last_sharer != UINT32_MAX && id == s->last_sharer_id)
        return s->last_sharer;
    if (2 * (s->nsharers + 1) > s->cap_sharer_slots && sharers_grow(s))
        return UINT32_MAX;
    size_t mask = s->cap_sharer_slots - 1;
    size_t j = mix(id) & mask;
    while (s->sharer_slot[j] && s->sharer_ids[s->sharer_slot[j] - 1] != id)
        j = (j + 1) & mask;
    if (!s->sharer_slot[j]) {
        s->sharer_ids[s->nsharers++] = id;
        s->sharer_slot[j] = (uint32_t)s->nsharers;
    }
    s->last_sharer_id = id;
    s->last_sharer = s->sharer_slot[j] - 1;
    return s->last_sharer;
}

/* --- rows ------------------------------------------------------------------------------------------------ */

static inline uint64_t row_hash(const struct sh_row *r)
{
    uint64_t a = ((uint64_t)r->detail << 32) | r->sharer;
    uint64_t b = ((uint64_t)r->vcpu << 32) | ((uint64_t)r->offset << 16) | ((uint64_t)r->len << 8) | r->store;
    return mix(a ^ mix(b ^ mix(r->pc)));
}

static inline int row_same(const struct sh_row *a, const struct sh_row *b)
{
    return a->pc == b->pc && a->detail == b->detail && a->sharer == b->sharer && a->vcpu == b->vcpu &&
           a->offset == b->offset && a->len == b->len && a->store == b->store;
}

static int rows_grow(struct sh *s)
{
    size_t cap = s->cap_rows ? 2 * s->cap_rows : 1024;
    struct sh_row *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < s->cap_rows; i++) {
        if (!s->rows[i].used)
            continue;
        size_t j = row_hash(&s->rows[i]) & (cap - 1);
        while (t[j].used)
            j = (j + 1) & (cap - 1);
        t[j] = s->rows[i];
    }
    free(s->rows);
    s->rows = t;
    s->cap_rows = cap;
    return 0;
}

static int row_add(struct sh *s, const struct sh_row *key)
{
    if (2 * (s->nrows + 1) > s->cap_rows && rows_grow(s))
        return -1;
    size_t mask = s->cap_rows - 1;
    size_t j = row_hash(key) & mask;
    while (s->rows[j].used && !row_same(&s->rows[j], key))
        j = (j + 1) & mask;
    if (!s->rows[j].used) {
        s->rows[j] = *key;
        s->rows[j].used = 1;
        s->rows[j].count = 0;
        s->nrows++;
    }
    s->rows[j].count++;
    return 0;
}

/* --- runs ------------------------------------------------------------------------------------------------ */

static int run_add(struct runs *r, uint64_t len)
{
    if (len < SH_RUN_SMALL) {
        r->small[len]++;
        return 0;
    }
    if (r->nbig == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        uint64_t *b = realloc(r->big, cap * sizeof *b);
        if (!b)
            return -1;
        r->big = b;
        r->cap = cap;
    }
    r->big[r->nbig++] = len;
    return 0;
}

/* --- the passes ------------------------------------------------------------------------------------------ */

/* Why a record is left out of the analysis: 0 it is not, SH_C_IO (MMIO), SH_C_NO_PADDR (keyed by physical
 * address but it has none), or -1 (not a load or store). */
static inline int skip_reason(uint8_t kind, uint8_t flags, int use_paddr)
{
    if (kind != SH_KIND_LOAD && kind != SH_KIND_STORE)
        return -1;
    if (flags & SH_RF_IO)
        return SH_C_IO;
    if (use_paddr && !(flags & SH_RF_PADDR))
        return SH_C_NO_PADDR;
    return 0;
}

static inline uint64_t last_byte(uint64_t addr, uint8_t size)
{
    uint64_t end = addr + (size ? size : 1) - 1;
    return end < addr ? UINT64_MAX : end;
}

/* mtrace's rule on one line piece (docs/sharing.md, "Transfers"); sets *transfer and *moved, and counts the
 * transfer in the matrix from the vCPU the line comes from: for a load the last writer; for a store the most
 * recent other accessor, found among the accessors since the last store (another vCPU holds the line only by
 * having accessed it since then). -1 when out of memory. */
static int touch(struct sh *s, uint64_t ln, uint16_t v, uint32_t who, int store, int *transfer, int *moved)
{
    int fresh;
    struct line *e = line_get(s, ln, &fresh);
    if (!e)
        return -1;
    if (fresh) {
        e->first_vcpu = v;
        e->first_sharer = who;
    } else {
        uint8_t f = e->flags;
        if (v != e->first_vcpu)
            f |= SH_MULTI_VCPU;
        if (who != e->first_sharer)
            f |= SH_MULTI_SHARER;
        if (f != e->flags) {
            s->multi_vcpu += (f & ~e->flags & SH_MULTI_VCPU) != 0;
            s->multi_sharer += (f & ~e->flags & SH_MULTI_SHARER) != 0;
            e->flags = f;
            if (!e->detail && !detail_new(s, e, ln))
                return -1;
            s->details[e->detail - 1].flags = f;
        }
    }
    uint64_t bit = 1ull << v;
    uint8_t me = (uint8_t)(v + 1), from = 0; /* vCPU + 1 the line comes from; 0: no transfer */
    if (store) {
        if (e->holders & ~bit)
            from = e->recent[0] != me ? e->recent[0] : e->recent[1];
        *moved = from || !(e->flags & SH_WRITTEN);
        e->holders = bit;
        e->writer = e->recent[0] = me;
        e->recent[1] = 0;
        if (!(e->flags & SH_WRITTEN)) {
            e->flags |= SH_WRITTEN;
            if (e->detail)
                s->details[e->detail - 1].flags = e->flags;
        }
    } else {
        if ((e->flags & SH_WRITTEN) && !(e->holders & bit))
            from = e->writer;
        *moved = from != 0;
        e->holders |= bit;
        if (e->recent[0] != me) {
            e->recent[1] = e->recent[0];
            e->recent[0] = me;
        }
    }
    *transfer = from != 0;
    /* A transfer needs another vCPU's copy or store, so the line has its detail. */
    if (from) {
        s->details[e->detail - 1].transfers++;
        s->matrix[(from - 1) * SH_MAX_VCPUS + v]++;
    }
    return 0;
}

EXPORT int sh_pass1(struct sh *s, size_t n, const uint16_t *restrict vcpu, const uint8_t *restrict kind,
                    const uint64_t *restrict addr, const uint8_t *restrict size, const uint8_t *restrict flags,
                    const uint64_t *restrict sharer, int use_paddr, uint8_t *restrict moved, uint32_t *bad_vcpu)
{
    uint64_t c[SH_NCOUNTERS]; /* kept in registers and the stack, not behind s, while the loop runs */
    uint16_t run_vcpu = s->run_vcpu;
    uint64_t run_len = s->run_len;
    int rc = 0;
    memcpy(c, s->c, sizeof c);
    for (size_t i = 0; i < n; i++) {
        /* A trace with a large footprint waits on memory for each line's entry: ask for it early. */
        if (i + PREFETCH_AHEAD < n && s->cap_lines)
            __builtin_prefetch(&s->lines[mix((addr[i + PREFETCH_AHEAD] >> s->shift) + 1) & (s->cap_lines - 1)]);
        int why = skip_reason(kind[i], flags[i], use_paddr);
        if (moved)
            moved[i] = 0;
        if (why) {
            if (why > 0)
                c[why]++;
            continue;
        }
        uint16_t v = vcpu[i];
        if (v >= SH_MAX_VCPUS) {
            *bad_vcpu = v;
            rc = -2;
            break;
        }
        uint32_t who = v;
        if (sharer && (who = sharer_index(s, sharer[i])) == UINT32_MAX) {
            rc = -1;
            break;
        }
        c[SH_C_DATA]++;
        if (v == run_vcpu) {
            run_len++;
        } else {
            if (run_len && run_add(&s->runs[0], run_len)) {
                rc = -1;
                break;
            }
            run_vcpu = v;
            run_len = 1;
        }
        int store = kind[i] == SH_KIND_STORE, any_transfer = 0, any_moved = 0;
        uint64_t ln = addr[i] >> s->shift, last = last_byte(addr[i], size[i]) >> s->shift;
        for (;; ln++) {
            int t, m;
            if (touch(s, ln, v, who, store, &t, &m)) {
                rc = -1;
                break;
            }
            c[SH_C_PIECES]++;
            c[SH_C_TRANSFERS] += t;
            any_transfer |= t;
            any_moved |= m;
            if (ln == last)
                break;
        }
        if (rc)
            break;
        c[SH_C_TRANSFER_RECORDS] += any_transfer;
        c[SH_C_MOVEMENT_RECORDS] += any_moved;
        if (moved)
            moved[i] = (uint8_t)any_moved;
    }
    memcpy(s->c, c, sizeof c);
    s->run_vcpu = run_vcpu;
    s->run_len = run_len;
    return rc;
}

EXPORT int sh_pass2(struct sh *s, size_t n, const uint16_t *restrict vcpu, const uint8_t *restrict kind,
                    const uint64_t *restrict addr, const uint64_t *restrict vaddr, const uint8_t *restrict size,
                    const uint8_t *restrict flags, const uint64_t *restrict sharer, const uint64_t *restrict pc,
                    int use_paddr)
{
    struct runs *runs = &s->runs[1];
    if (!s->dslot && detail_index_build(s))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (skip_reason(kind[i], flags[i], use_paddr))
            continue;
        uint16_t v = vcpu[i];
        uint64_t a = addr[i], end = last_byte(a, size[i]);
        for (uint64_t ln = a >> s->shift;; ln++) {
            struct sh_detail *d = detail_find(s, ln);
            if (d) {
                uint64_t base = ln << s->shift, lo = a > base ? a : base;
                uint64_t hi = (end >> s->shift) > ln ? base + (1ull << s->shift) - 1 : end;
                if (vaddr) {
                    uint64_t vl = (vaddr[i] + (lo - a)) >> s->shift;
                    if (d->vline == NO_VLINE)
                        d->vline = vl;
                    else if (d->vline != vl)
                        d->aliased = 1;
                }
                if (d->flags & SH_MULTI_VCPU) {
                    if (d->run && d->last_vcpu == v) {
                        d->run++;
                    } else {
                        if (d->run && run_add(runs, d->run))
                            return -1;
                        d->last_vcpu = v;
                        d->run = 1;
                    }
                }
                if (d->flags & SH_MULTI_SHARER) {
                    struct sh_row r = {0};
                    r.pc = pc ? pc[i] : 0;
                    r.detail = (uint32_t)(d - s->details);
                    r.sharer = v;
                    if (sharer && (r.sharer = sharer_index(s, sharer[i])) == UINT32_MAX)
                        return -1;
                    r.vcpu = v;
                    r.offset = (uint16_t)(lo - base);
                    r.len = (uint8_t)(hi - lo + 1);
                    r.store = kind[i] == SH_KIND_STORE;
                    if (row_add(s, &r))
                        return -1;
                }
            }
            if (ln == end >> s->shift)
                break;
        }
    }
    return 0;
}

EXPORT int sh_close_runs(struct sh *s)
{
    if (s->run_len) {
        if (run_add(&s->runs[0], s->run_len))
            return -1;
        s->run_len = 0;
    }
    for (size_t i = 0; i < s->ndetails; i++) {
        if (!s->details[i].run)
            continue;
        if (run_add(&s->runs[1], s->details[i].run))
            return -1;
        s->details[i].run = 0;
    }
    return 0;
}

/* --- life and export ------------------------------------------------------------------------------------- */

EXPORT struct sh *sh_new(unsigned line_shift)
{
    if (line_shift < 3 || line_shift > 12)
        return NULL;
    struct sh *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->shift = line_shift;
    s->last_sharer = UINT32_MAX;
    s->run_vcpu = NO_VCPU;
    for (int k = 0; k < 2; k++)
        if (!(s->runs[k].small = calloc(SH_RUN_SMALL, sizeof(uint64_t)))) {
            sh_free(s);
            return NULL;
        }
    return s;
}

EXPORT void sh_free(struct sh *s)
{
    if (!s)
        return;
    for (int k = 0; k < 2; k++) {
        free(s->runs[k].small);
        free(s->runs[k].big);
    }
    free(s->lines);
    free(s->dslot);
    free(s->details);
    free(s->sharer_ids);
    free(s->sharer_slot);
    free(s->rows);
    free(s);
}

EXPORT const uint64_t *sh_counters(const struct sh *s)
{
    return s->c;
}

EXPORT const uint64_t *sh_matrix(const struct sh *s)
{
    return s->matrix;
}

EXPORT const char *sh_counter_names(void)
{
    return COUNTER_NAMES;
}

EXPORT void sh_line_counts(const struct sh *s, uint64_t out[3])
{
    out[0] = s->nlines;
    out[1] = s->multi_vcpu;
    out[2] = s->multi_sharer;
}

EXPORT size_t sh_details(const struct sh *s, const struct sh_detail **out)
{
    *out = s->details;
    return s->ndetails;
}

EXPORT size_t sh_sharers(const struct sh *s, const uint64_t **out)
{
    *out = s->sharer_ids;
    return s->nsharers;
}

EXPORT size_t sh_rows(const struct sh *s, struct sh_row *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < s->cap_rows && k < cap; i++)
        if (s->rows[i].used)
            out[k++] = s->rows[i];
    return s->nrows;
}

EXPORT void sh_runs(const struct sh *s, int which, const uint64_t **small, const uint64_t **big, size_t *nbig)
{
    const struct runs *r = &s->runs[which ? 1 : 0];
    *small = r->small;
    *big = r->big;
    *nbig = r->nbig;
}
