/* memtap cache-hierarchy simulator core: a hierarchy of set-associative caches driven by whole batches of
 * records or ops per call. docs/cachesim.md describes the model; this file implements it.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include "tables.h"

#define EXPORT __attribute__((visibility("default")))
#define MAXLEVELS 16
#define NOTAG UINT64_MAX

/* MESI states of a way. A coherence-invalidated way keeps its tag with state I (a "ghost"), so that the next
 * miss on it is recognised as a coherence miss. */
enum { ST_I, ST_S, ST_E, ST_M };

/* Counters per level and vCPU; names in COUNTER_NAMES, same order. */
enum {
    C_HIT, /* + enum ms_kind */
    C_MISS = C_HIT + MS_NKINDS,
    C_WRITE_HITS = C_MISS + MS_NKINDS,
    C_WB_HITS,
    C_WB_MISSES,
    C_COMPULSORY,
    C_CAPACITY,
    C_CONFLICT,
    C_COHERENCE,
    C_WRITEBACKS,
    C_EVICTIONS,
    C_INVALIDATIONS,
    C_BACK_INVALIDATIONS,
    C_PREFETCH_HITS,
    C_PREFETCH_MISSES,
    C_ZEROED,
    C_CLEANED,
    C_DISCARDED,
    NCOUNTERS
};

static const char COUNTER_NAMES[] =
    "hits_fetch,hits_load,hits_store,hits_wbfill,misses_fetch,misses_load,misses_store,misses_wbfill,"
    "write_hits,writeback_hits,writeback_misses,compulsory,capacity,conflict,coherence,writebacks,evictions,"
    "invalidations,back_invalidations,prefetch_hits,prefetch_misses,zeroed,cleaned,discarded";
static const char OP_NAMES[] = "none,fetch,load,store,marker,uncached,prefetch,zero,clean,invalidate,flush,"
                               "clean_all,invalidate_all,flush_all";

/* Miss classes returned by access(): -1 is a hit. */
enum { CL_HIT = -1, CL_COMPULSORY, CL_CAPACITY, CL_CONFLICT, CL_COHERENCE, CL_UNCLASSIFIED };

struct cache {
    uint64_t *tag;   /* sets * ways line numbers, NOTAG when empty */
    uint64_t *stamp; /* LRU: last use; FIFO: fill time */
    uint8_t *state;
    uint64_t *plru;  /* per set: tree bits, node i at bit i */
    uint64_t clock;
    size_t hint;     /* index of the way hit or filled last: checked before searching the set */
    struct falru shadow;
    struct lineset seen;
};

struct level {
    struct ms_level_cfg c;
    unsigned line_bits;
    uint64_t set_mask;
    int next;              /* level below on this level's path, -1: memory */
    int boundary;          /* private, and the level below is shared or memory: coherence happens here */
    struct cache **inst;   /* shared: inst[0]; private: one per vCPU */
    uint64_t *cnt;         /* NCOUNTERS per vCPU */
    struct countmap maps[2];
};

struct ms_sim {
    struct level lv[MAXLEVELS];
    int nlv;
    int first[2];          /* first level of the instruction (0) and data (1) paths, -1: memory */
    int nvcpu, cap_vcpu;
    struct ms_options o;
    uint64_t rng;
    uint64_t *mem;         /* NCOUNTERS per vCPU for main memory */
    uint64_t *ops;         /* MS_NOPS per vCPU */
    struct ms_memop *log;  /* what reached main memory since the last ms_log_take, when logging */
    size_t nlog, caplog;
    uint64_t cur;          /* index of the input item being simulated */
    int logging, log_failed;
};

static inline uint64_t *cnt(struct ms_sim *s, int li, int v)
{
    return (li < 0 ? s->mem : s->lv[li].cnt) + (size_t)v * NCOUNTERS;
}

/* A read or write of main memory: counted, and logged (for memory-side trace formats) when asked. */
static void to_memory(struct ms_sim *s, int v, int counter, uint64_t addr, int write)
{
    cnt(s, -1, v)[counter]++;
    if (!s->logging)
        return;
    if (s->nlog == s->caplog) {
        size_t cap = s->caplog ? 2 * s->caplog : 4096;
        struct ms_memop *p = realloc(s->log, cap * sizeof *p);
        if (!p) {
            s->log_failed = 1;
            return;
        }
        s->log = p;
        s->caplog = cap;
    }
    s->log[s->nlog++] = (struct ms_memop){.addr = addr, .index = s->cur, .vcpu = (uint16_t)v, .write = (uint8_t)write};
}

static inline struct cache *inst(struct level *L, int v)
{
    return L->inst[L->c.shared ? 0 : v];
}

static unsigned log2u(uint64_t x)
{
    unsigned b = 0;
    while (x >>= 1)
        b++;
    return b;
}

static uint64_t rng_next(struct ms_sim *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->rng = x;
}

/* --- one cache: lookup and replacement ------------------------------------------------------------------ */

/* Way holding line in set (base = first way's index), or -1; *ghost gets a coherence-invalidated way. */
static inline int find(const struct level *L, const struct cache *c, size_t base, uint64_t line, int *ghost)
{
    if (c->tag[c->hint] == line && c->state[c->hint] != ST_I) /* a line's tag can only be in its own set */
        return (int)(c->hint - base);
    const uint64_t *t = c->tag + base;
    for (uint32_t w = 0; w < L->c.ways; w++)
        if (t[w] == line) {
            if (c->state[base + w] != ST_I)
                return (int)w;
            *ghost = (int)w;
        }
    return -1;
}

static inline void touch(const struct level *L, struct cache *c, size_t base, uint64_t set, int w, int fill)
{
    switch (L->c.repl) {
    case MS_LRU:
        c->stamp[base + w] = ++c->clock;
        break;
    case MS_FIFO:
        if (fill)
            c->stamp[base + w] = ++c->clock;
        break;
    case MS_PLRU: {
        uint64_t bits = c->plru[set];
        for (uint64_t node = (uint64_t)w + L->c.ways; node > 1; node >>= 1) {
            uint64_t parent = node >> 1;
            if (node & 1) /* used the right half: point the victim left */
                bits &= ~(1ULL << parent);
            else
                bits |= 1ULL << parent;
        }
        c->plru[set] = bits;
        break;
    }
    default:
        break;
    }
}

static int victim(struct ms_sim *s, const struct level *L, const struct cache *c, size_t base, uint64_t set)
{
    uint32_t ways = L->c.ways;
    for (uint32_t w = 0; w < ways; w++)
        if (c->state[base + w] == ST_I)
            return (int)w;
    switch (L->c.repl) {
    case MS_RANDOM:
        return (int)(rng_next(s) % ways);
    case MS_PLRU: {
        uint64_t node = 1;
        while (node < ways)
            node = 2 * node + ((c->plru[set] >> node) & 1);
        return (int)(node - ways);
    }
    default: {
        uint32_t best = 0;
        for (uint32_t w = 1; w < ways; w++)
            if (c->stamp[base + w] < c->stamp[base + best])
                best = w;
        return (int)best;
    }
    }
}

/* --- accounting ------------------------------------------------------------------------------------------ */

static void count_miss_maps(struct ms_sim *s, struct level *L, int kind, uint64_t addr, uint64_t pc)
{
    if (!s->o.track || kind > MS_K_STORE)
        return;
    countmap_add(&L->maps[0], pc, kind);
    countmap_add(&L->maps[1], addr >> s->o.range_bits, kind);
}

static void count_result(struct ms_sim *s, int li, int v, int kind, int write, int cls, uint64_t addr,
                         uint64_t pc)
{
    uint64_t *k = cnt(s, li, v);
    if (cls == CL_HIT) {
        k[C_HIT + kind]++;
        k[C_WRITE_HITS] += (uint64_t)write;
        return;
    }
    k[C_MISS + kind]++;
    if (cls != CL_UNCLASSIFIED)
        k[C_COMPULSORY + cls]++;
    count_miss_maps(s, &s->lv[li], kind, addr, pc);
}

/* --- the hierarchy -------------------------------------------------------------------------------------- */

static int access(struct ms_sim *s, int li, int v, uint64_t addr, int kind, int write, int rfo, uint64_t pc,
                  int count, int prefetch, uint8_t *grant);
static void writeback_in(struct ms_sim *s, int li, int v, uint64_t addr);

/* Other vCPUs' private copies of addr's line: invalidated (exclusive) or shared, dirty ones written back.
 * Returns whether any other vCPU held the line. */
static int snoop(struct ms_sim *s, int v, uint64_t addr, int exclusive)
{
    int others = 0;
    for (int u = 0; u < s->nvcpu; u++) {
        if (u == v)
            continue;
        for (int li = 0; li < s->nlv; li++) {
            struct level *L = &s->lv[li];
            if (L->c.shared || L->c.side == MS_INSTRUCTION) /* instruction caches are not snooped */
                continue;
            struct cache *c = inst(L, u);
            uint64_t line = addr >> L->line_bits, set = line & L->set_mask;
            size_t base = set * L->c.ways;
            int ghost = -1, w = find(L, c, base, line, &ghost);
            if (w < 0)
                continue;
            others = 1;
            uint8_t *st = &c->state[base + w];
            if (exclusive) {
                *st = ST_I; /* the tag stays: a ghost */
                cnt(s, li, u)[C_INVALIDATIONS]++;
            } else if (*st == ST_M) {
                cnt(s, li, u)[C_WRITEBACKS]++;
                *st = ST_S;
                int below = L->next;
                while (below >= 0 && !s->lv[below].c.shared)
                    below = s->lv[below].next;
                writeback_in(s, below, u, addr);
            } else {
                *st = ST_S;
            }
        }
    }
    return others;
}

static int coherent(const struct ms_sim *s, const struct level *L)
{
    return !L->c.shared && s->nvcpu > 1;
}

/* A write that hit (or was just allocated) in way i of level li: coherence upgrade, dirtying, write-through. */
static void do_write(struct ms_sim *s, int li, int v, struct cache *c, size_t i, uint64_t addr, int kind,
                     uint64_t pc)
{
    struct level *L = &s->lv[li];
    if (c->state[i] == ST_S && coherent(s, L))
        snoop(s, v, addr, 1);
    if (L->c.write_back) {
        c->state[i] = ST_M;
        return;
    }
    c->state[i] = ST_E;
    if (L->next >= 0) {
        uint8_t g;
        access(s, L->next, v, addr, kind, 1, 1, pc, 1, 0, &g);
    } else {
        to_memory(s, v, C_WRITE_HITS, addr, 1);
    }
}

/* Drop the copies of [addr, addr + size) in the levels above li that li serves; returns 1 if one was dirty. */
static int back_invalidate(struct ms_sim *s, int li, int v, uint64_t addr, uint64_t size)
{
    int dirty = 0;
    struct level *B = &s->lv[li];
    for (int ui = 0; ui < li; ui++) {
        struct level *U = &s->lv[ui];
        if (B->c.side != MS_UNIFIED && U->c.side != B->c.side)
            continue;
        int lo = B->c.shared && !U->c.shared ? 0 : v, hi = B->c.shared && !U->c.shared ? s->nvcpu : v + 1;
        for (int u = lo; u < hi; u++) {
            struct cache *c = inst(U, u);
            for (uint64_t a = addr; a < addr + size; a += U->c.line) {
                uint64_t line = a >> U->line_bits, set = line & U->set_mask;
                size_t base = set * U->c.ways;
                int ghost = -1, w = find(U, c, base, line, &ghost);
                if (w < 0)
                    continue;
                dirty |= c->state[base + w] == ST_M;
                c->state[base + w] = ST_I;
                c->tag[base + w] = NOTAG;
                cnt(s, ui, u)[C_BACK_INVALIDATIONS]++;
            }
        }
    }
    return dirty;
}

/* Evict way i of level li (set base); a dirty line goes to the level below. */
static void evict(struct ms_sim *s, int li, int v, struct cache *c, size_t i)
{
    struct level *L = &s->lv[li];
    if (c->state[i] == ST_I)
        return;
    uint64_t addr = c->tag[i] << L->line_bits;
    uint64_t *k = cnt(s, li, v);
    k[C_EVICTIONS]++;
    int dirty = c->state[i] == ST_M;
    if (L->c.inclusive)
        dirty |= back_invalidate(s, li, v, addr, L->c.line);
    c->state[i] = ST_I;
    c->tag[i] = NOTAG;
    if (dirty) {
        k[C_WRITEBACKS]++;
        writeback_in(s, L->next, v, addr);
    }
}

/* Put line into level li's set (choosing a victim unless way w is given) with state st. */
static size_t install(struct ms_sim *s, int li, int v, struct cache *c, size_t base, uint64_t set, int w,
                      uint64_t line, uint8_t st)
{
    struct level *L = &s->lv[li];
    if (w < 0)
        w = victim(s, L, c, base, set);
    size_t i = base + (size_t)w;
    evict(s, li, v, c, i);
    c->tag[i] = line;
    c->state[i] = st;
    touch(L, c, base, set, w, 1);
    return i;
}

/* A dirty line of the level above arrives at level li (or memory when li < 0). */
static void writeback_in(struct ms_sim *s, int li, int v, uint64_t addr)
{
    if (li < 0) {
        to_memory(s, v, C_WB_HITS, addr, 1);
        return;
    }
    struct level *L = &s->lv[li];
    struct cache *c = inst(L, v);
    uint64_t line = addr >> L->line_bits, set = line & L->set_mask;
    size_t base = set * L->c.ways;
    int ghost = -1, w = find(L, c, base, line, &ghost);
    uint64_t *k = cnt(s, li, v);
    if (w >= 0) {
        k[C_WB_HITS]++;
        c->state[base + w] = ST_M;
        if (!s->o.compat)
            touch(L, c, base, set, w, 0);
        return;
    }
    k[C_WB_MISSES]++;
    if (!L->c.write_allocate) {
        writeback_in(s, L->next, v, addr);
        return;
    }
    /* A whole line needs no fetch; pycachesim fetches it anyway, and a partial one (a smaller line above) must. */
    int fetch = s->o.compat || (li > 0 && s->lv[li - 1].c.line < L->c.line);
    if (fetch && L->next >= 0) {
        uint8_t g;
        access(s, L->next, v, addr, MS_K_WBFILL, 0, 1, 0, 1, 0, &g);
    } else if (fetch) {
        to_memory(s, v, C_HIT + MS_K_WBFILL, addr, 0);
    }
    install(s, li, v, c, base, set, ghost, line, ST_M);
}

/* Miss class of an access to line (and keep the seen-set and the shadow up to date). */
static int classify(const struct ms_sim *s, struct cache *c, uint64_t line, int ghost, int hit)
{
    if (!s->o.classify)
        return CL_UNCLASSIFIED;
    int fresh = lineset_add(&c->seen, line) == 1;
    int fa_hit = falru_access(&c->shadow, line);
    if (hit)
        return CL_HIT;
    if (ghost >= 0)
        return CL_COHERENCE;
    if (fresh)
        return CL_COMPULSORY;
    return fa_hit ? CL_CONFLICT : CL_CAPACITY;
}

/* A demand access (or a prefetch) of addr's line at level li for vCPU v. Counts it when count is set, and
 * returns its class (CL_HIT or a miss class). *grant gets the MESI state the level above may hold it in. */
static int access(struct ms_sim *s, int li, int v, uint64_t addr, int kind, int write, int rfo, uint64_t pc,
                  int count, int prefetch, uint8_t *grant)
{
    if (li < 0) {
        to_memory(s, v, write ? C_WRITE_HITS : C_HIT + kind, addr, write);
        *grant = ST_E;
        return CL_HIT;
    }
    struct level *L = &s->lv[li];
    struct cache *c = inst(L, v);
    uint64_t line = addr >> L->line_bits, set = line & L->set_mask;
    size_t base = set * L->c.ways;
    int ghost = -1, w = find(L, c, base, line, &ghost);
    int cls = classify(s, c, line, ghost, w >= 0);
    if (prefetch)
        cnt(s, li, v)[w >= 0 ? C_PREFETCH_HITS : C_PREFETCH_MISSES]++;
    else if (count)
        count_result(s, li, v, kind, write, w >= 0 ? CL_HIT : cls, addr, pc);
    if (w >= 0) {
        size_t i = base + (size_t)w;
        c->hint = i;
        if (!(write && s->o.compat))
            touch(L, c, base, set, w, 0);
        if (write)
            do_write(s, li, v, c, i, addr, kind, pc);
        *grant = c->state[i] == ST_S ? ST_S : ST_E;
        return CL_HIT;
    }
    if (write && !L->c.write_allocate) {
        if (coherent(s, L) && L->boundary)
            snoop(s, v, addr, 1);
        uint8_t g;
        if (L->next >= 0)
            access(s, L->next, v, addr, kind, 1, 1, pc, 1, 0, &g);
        else
            to_memory(s, v, C_WRITE_HITS, addr, 1);
        *grant = ST_E;
        return cls;
    }
    uint8_t st = ST_E;
    if (L->boundary && coherent(s, L))
        st = snoop(s, v, addr, rfo || write) && !(rfo || write) ? ST_S : ST_E;
    uint8_t below;
    access(s, L->next, v, addr, kind, 0, rfo || write, pc, 1, prefetch, &below);
    if (!L->boundary)
        st = below;
    size_t i = c->hint = install(s, li, v, c, base, set, ghost, line, st);
    if (write)
        do_write(s, li, v, c, i, addr, kind, pc);
    *grant = c->state[i] == ST_S ? ST_S : ST_E;
    return cls;
}

/* --- ops ------------------------------------------------------------------------------------------------- */

/* A fetch, load or store from the core, split at the first level's line boundaries. */
static void core_access(struct ms_sim *s, int v, int op, uint64_t addr, uint32_t size, uint64_t pc)
{
    int kind = op - MS_OP_FETCH, write = op == MS_OP_STORE;
    int li = s->first[op == MS_OP_FETCH ? 0 : 1];
    uint8_t g;
    if (li < 0) {
        access(s, li, v, addr, kind, write, write, pc, 1, 0, &g);
        return;
    }
    unsigned lb = s->lv[li].line_bits;
    uint64_t first = addr >> lb, last = (addr + (size ? size : 1) - 1) >> lb;
    if (first == last) {
        access(s, li, v, addr, kind, write, write, pc, 1, 0, &g);
        return;
    }
    if (s->o.split_lines) {
        for (uint64_t l = first; l <= last; l++)
            access(s, li, v, l == first ? addr : l << lb, kind, write, write, pc, 1, 0, &g);
        return;
    }
    int cls = CL_HIT;
    for (uint64_t l = first; l <= last; l++) {
        int r = access(s, li, v, l == first ? addr : l << lb, kind, write, write, pc, 0, 0, &g);
        if (cls == CL_HIT)
            cls = r;
    }
    count_result(s, li, v, kind, write, cls, addr, pc);
}

/* Levels an op on one line reaches: the data side, or every level for whole-cache ops. */
static int on_data_side(const struct level *L)
{
    return L->c.side != MS_INSTRUCTION;
}

/* Clean and/or invalidate way i of level li's cache c (counted for vCPU v). */
static void maintain_way(struct ms_sim *s, int li, int v, struct cache *c, size_t i, int clean, int inval)
{
    if (c->state[i] == ST_I)
        return;
    uint64_t *k = cnt(s, li, v);
    if (clean && c->state[i] == ST_M) {
        k[C_CLEANED]++;
        k[C_WRITEBACKS]++;
        to_memory(s, v, C_WB_HITS, c->tag[i] << s->lv[li].line_bits, 1);
        c->state[i] = ST_E;
    }
    if (inval) {
        k[C_DISCARDED] += c->state[i] == ST_M;
        c->state[i] = ST_I;
        c->tag[i] = NOTAG;
    }
}

/* Clean/invalidate addr's line in every data-side cache of every vCPU (to the point of coherence). */
static void maintain_line(struct ms_sim *s, int v, uint64_t addr, int clean, int inval)
{
    for (int li = 0; li < s->nlv; li++) {
        struct level *L = &s->lv[li];
        if (!on_data_side(L))
            continue;
        int n = L->c.shared ? 1 : s->nvcpu;
        for (int u = 0; u < n; u++) {
            struct cache *c = L->inst[u];
            uint64_t line = addr >> L->line_bits, set = line & L->set_mask;
            size_t base = set * L->c.ways;
            int ghost = -1, w = find(L, c, base, line, &ghost);
            if (w >= 0)
                maintain_way(s, li, L->c.shared ? v : u, c, base + (size_t)w, clean, inval);
        }
    }
}

/* Clean/invalidate every line of every cache vCPU v reaches (its private ones and the shared ones). */
static void maintain_all(struct ms_sim *s, int v, int clean, int inval)
{
    for (int li = 0; li < s->nlv; li++) {
        struct level *L = &s->lv[li];
        struct cache *c = inst(L, v);
        size_t n = L->c.sets * L->c.ways;
        for (size_t i = 0; i < n; i++)
            maintain_way(s, li, v, c, i, clean, inval);
    }
}

/* Zero addr's lines: own them dirty in the first data level without fetching. */
static void zero_lines(struct ms_sim *s, int v, uint64_t addr, uint32_t size, uint64_t pc)
{
    int li = s->first[1];
    if (li < 0) {
        to_memory(s, v, C_WRITE_HITS, addr, 1);
        return;
    }
    struct level *L = &s->lv[li];
    struct cache *c = inst(L, v);
    uint64_t first = addr >> L->line_bits, last = (addr + (size ? size : 1) - 1) >> L->line_bits;
    for (uint64_t line = first; line <= last; line++) {
        uint64_t set = line & L->set_mask;
        size_t base = set * L->c.ways;
        int ghost = -1, w = find(L, c, base, line, &ghost);
        cnt(s, li, v)[C_ZEROED]++;
        if (coherent(s, L) && (w < 0 || c->state[base + (size_t)w] == ST_S))
            snoop(s, v, line << L->line_bits, 1);
        size_t i = w >= 0 ? base + (size_t)w : install(s, li, v, c, base, set, ghost, line, ST_E);
        c->state[i] = ST_E;
        do_write(s, li, v, c, i, line << L->line_bits, MS_K_STORE, pc);
    }
}

static void reset_stats(struct ms_sim *s)
{
    size_t n = (size_t)s->cap_vcpu * NCOUNTERS;
    for (int li = 0; li < s->nlv; li++) {
        memset(s->lv[li].cnt, 0, n * sizeof(uint64_t));
        countmap_clear(&s->lv[li].maps[0]);
        countmap_clear(&s->lv[li].maps[1]);
    }
    memset(s->mem, 0, n * sizeof(uint64_t));
    memset(s->ops, 0, (size_t)s->cap_vcpu * MS_NOPS * sizeof(uint64_t));
}

/* The common case without the general machinery: a fetch, load or store within one line that hits the way
 * its first level hit last, and needs no state change. Returns 1 when it handled the access. Not used when
 * classifying, since the shadow must see every access. */
static inline int fast_hit(struct ms_sim *s, int v, int op, uint64_t addr, uint32_t size)
{
    int li = s->first[op == MS_OP_FETCH ? 0 : 1];
    if (li < 0 || s->o.classify)
        return 0;
    struct level *L = &s->lv[li];
    struct cache *c = inst(L, v);
    uint64_t line = addr >> L->line_bits;
    size_t i = c->hint;
    if (c->tag[i] != line || ((addr + (size ? size : 1) - 1) >> L->line_bits) != line)
        return 0;
    uint8_t st = c->state[i];
    int write = op == MS_OP_STORE;
    if (st == ST_I || (write && !(st == ST_M && L->c.write_back)))
        return 0;
    uint64_t *k = cnt(s, li, v);
    k[C_HIT + op - MS_OP_FETCH]++;
    k[C_WRITE_HITS] += (uint64_t)write;
    if (!(write && s->o.compat)) {
        uint64_t set = line & L->set_mask;
        touch(L, c, set * L->c.ways, set, (int)(i - set * L->c.ways), 0);
    }
    return 1;
}

static void run_op(struct ms_sim *s, int v, int op, uint64_t addr, uint32_t size, uint64_t pc)
{
    if (op >= MS_NOPS)
        return;
    s->ops[(size_t)v * MS_NOPS + op]++;
    uint8_t g;
    switch (op) {
    case MS_OP_FETCH:
    case MS_OP_LOAD:
    case MS_OP_STORE:
        if (!fast_hit(s, v, op, addr, size))
            core_access(s, v, op, addr, size, pc);
        break;
    case MS_OP_MARKER:
        if (s->o.reset_marker >= 0 && addr == (uint64_t)s->o.reset_marker)
            reset_stats(s);
        break;
    case MS_OP_PREFETCH:
        access(s, s->first[1], v, addr, MS_K_LOAD, 0, 0, pc, 0, 1, &g);
        break;
    case MS_OP_ZERO:
        zero_lines(s, v, addr, size, pc);
        break;
    case MS_OP_CLEAN:
    case MS_OP_INVAL:
    case MS_OP_FLUSH:
        maintain_line(s, v, addr, op != MS_OP_INVAL, op != MS_OP_CLEAN);
        break;
    case MS_OP_CLEAN_ALL:
    case MS_OP_INVAL_ALL:
    case MS_OP_FLUSH_ALL:
        maintain_all(s, v, op != MS_OP_INVAL_ALL, op != MS_OP_CLEAN_ALL);
        break;
    default: /* none, uncached: only counted */
        break;
    }
}

/* A cache-maintenance record (trace.h: kind cmo, value = op | granularity << 4 | level << 6) as a core op. What
 * the model has no notion of (instruction-cache invalidation, instruction prefetch, locking, one set/way, an
 * address that could not be computed) is counted as ignored; docs/cachesim.md has the table. */
static int cmo_op(uint64_t value, uint8_t flags)
{
    static const uint8_t line_ops[16] = {
        [MS_CMO_CLEAN] = MS_OP_CLEAN, [MS_CMO_INVALIDATE] = MS_OP_INVAL, [MS_CMO_FLUSH] = MS_OP_FLUSH,
        [MS_CMO_ZERO] = MS_OP_ZERO, [MS_CMO_PREFETCH_READ] = MS_OP_PREFETCH, [MS_CMO_PREFETCH_WRITE] = MS_OP_PREFETCH,
    };
    static const uint8_t whole_ops[16] = {
        [MS_CMO_CLEAN] = MS_OP_CLEAN_ALL, [MS_CMO_INVALIDATE] = MS_OP_INVAL_ALL, [MS_CMO_FLUSH] = MS_OP_FLUSH_ALL,
    };
    unsigned op = value & 15, granularity = (value >> 4) & 3;
    if (granularity == MS_CMO_WHOLE)
        return whole_ops[op];
    if (granularity != MS_CMO_LINE || (flags & MS_RF_NOADDR))
        return MS_OP_NONE;
    return line_ops[op];
}

/* Value i of a column, zero when the column is absent (see ms_run_columns). */
#define COL(c, type, i) (*(const type *)((const char *)(c).data + (i) * (c).stride))

EXPORT size_t ms_run_columns(struct ms_sim *s, const struct ms_columns *cols, size_t first, size_t n,
                             const uint8_t *kind_to_op, int use_paddr)
{
    static const uint64_t zero;
    struct ms_columns c = *cols;
    struct ms_column *all[] = {&c.kind, &c.vcpu, &c.size, &c.flags, &c.vaddr, &c.paddr, &c.pc, &c.value};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (!all[k]->data) {   /* an absent column reads as zeros: one zero, never advanced */
            all[k]->data = &zero;
            all[k]->stride = 0;
        }
    for (size_t j = first; j < n; j++) {
        uint16_t vcpu = COL(c.vcpu, uint16_t, j);
        s->cur = j;
        if (vcpu >= s->nvcpu)
            return j;
        uint8_t kind = COL(c.kind, uint8_t, j), fl = COL(c.flags, uint8_t, j);
        int op = kind_to_op[kind];
        if (kind == MS_KIND_CMO)
            op = cmo_op(COL(c.value, uint64_t, j), fl);
        if (fl & MS_RF_IO && op >= MS_OP_FETCH && op <= MS_OP_STORE)
            op = MS_OP_UNCACHED;
        uint64_t addr = op == MS_OP_MARKER ? COL(c.value, uint64_t, j)
                        : use_paddr && (fl & MS_RF_PADDR) ? COL(c.paddr, uint64_t, j)
                                                          : COL(c.vaddr, uint64_t, j);
        if (kind == MS_KIND_CMO && use_paddr && op >= MS_OP_PREFETCH && op <= MS_OP_FLUSH)
            op = MS_OP_NONE;   /* a line operation's physical address is not in the trace */
        run_op(s, vcpu, op, addr, COL(c.size, uint8_t, j), COL(c.pc, uint64_t, j));
    }
    return n;
}

EXPORT size_t ms_run_inputs(struct ms_sim *s, const struct ms_input *in, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (in[j].vcpu >= s->nvcpu)
            return j;
        s->cur = j;
        run_op(s, in[j].vcpu, in[j].op, in[j].addr, in[j].size, in[j].pc);
    }
    return n;
}

/* --- construction ------------------------------------------------------------------------------------------ */

static void cache_free(struct cache *c)
{
    if (!c)
        return;
    free(c->tag);
    free(c->stamp);
    free(c->state);
    free(c->plru);
    falru_free(&c->shadow);
    lineset_free(&c->seen);
    free(c);
}

static struct cache *cache_new(const struct ms_sim *s, const struct level *L)
{
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t n = L->c.sets * L->c.ways;
    c->tag = malloc(n * sizeof *c->tag);
    c->stamp = calloc(n, sizeof *c->stamp);
    c->state = calloc(n, 1);
    c->plru = calloc(L->c.sets, sizeof *c->plru);
    int ok = c->tag && c->stamp && c->state && c->plru;
    if (ok && s->o.classify)
        ok = falru_init(&c->shadow, n) == 0;
    if (c->tag)
        for (size_t i = 0; i < n; i++)
            c->tag[i] = NOTAG;
    if (!ok) {
        cache_free(c);
        return NULL;
    }
    return c;
}

static void *grow(void *p, size_t old, size_t new)
{
    char *q = realloc(p, new);
    if (q && new > old)
        memset(q + old, 0, new - old);
    return q;
}

EXPORT int ms_ensure_vcpus(struct ms_sim *s, int n)
{
    if (n <= s->nvcpu)
        return 0;
    if (n > s->cap_vcpu) {
        int cap = s->cap_vcpu ? s->cap_vcpu : 1;
        while (cap < n)
            cap *= 2;
        size_t o = (size_t)s->cap_vcpu * NCOUNTERS * 8, z = (size_t)cap * NCOUNTERS * 8;
        for (int li = 0; li < s->nlv; li++) {
            struct level *L = &s->lv[li];
            uint64_t *k = grow(L->cnt, o, z);
            struct cache **in = grow(L->inst, (size_t)s->cap_vcpu * sizeof *in, (size_t)cap * sizeof *in);
            if (k)
                L->cnt = k;
            if (in)
                L->inst = in;
            if (!k || !in)
                return -1;
        }
        uint64_t *m = grow(s->mem, o, z);
        if (m)
            s->mem = m;
        uint64_t *ops = grow(s->ops, (size_t)s->cap_vcpu * MS_NOPS * 8, (size_t)cap * MS_NOPS * 8);
        if (ops)
            s->ops = ops;
        if (!m || !ops)
            return -1;
        s->cap_vcpu = cap;
    }
    for (int li = 0; li < s->nlv; li++) {
        struct level *L = &s->lv[li];
        for (int v = L->c.shared ? 0 : s->nvcpu; v < (L->c.shared ? 1 : n); v++)
            if (!L->inst[v] && !(L->inst[v] = cache_new(s, L)))
                return -1;
    }
    s->nvcpu = n;
    return 0;
}

EXPORT struct ms_sim *ms_new(const struct ms_level_cfg *levels, int nlevels, const struct ms_options *opt)
{
    if (nlevels < 0 || nlevels > MAXLEVELS)
        return NULL;
    struct ms_sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nlv = nlevels;
    s->o = *opt;
    s->rng = opt->seed ? opt->seed : 0x9e3779b97f4a7c15ULL;
    s->first[0] = s->first[1] = -1;
    for (int li = nlevels - 1; li >= 0; li--) {
        struct level *L = &s->lv[li];
        L->c = levels[li];
        L->line_bits = log2u(L->c.line);
        L->set_mask = L->c.sets - 1;
        /* The next level is the first one below on this level's side (split levels precede unified ones). */
        L->next = -1;
        for (int b = li + 1; b < nlevels; b++)
            if (levels[b].side == MS_UNIFIED || levels[b].side == L->c.side) {
                L->next = b;
                break;
            }
        if (L->c.side != MS_DATA)
            s->first[0] = li;
        if (L->c.side != MS_INSTRUCTION)
            s->first[1] = li;
    }
    for (int li = 0; li < nlevels; li++) {
        struct level *L = &s->lv[li];
        L->boundary = !L->c.shared && (L->next < 0 || s->lv[L->next].c.shared);
    }
    if (ms_ensure_vcpus(s, 1)) {
        ms_free(s);
        return NULL;
    }
    return s;
}

EXPORT void ms_free(struct ms_sim *s)
{
    if (!s)
        return;
    for (int li = 0; li < s->nlv; li++) {
        struct level *L = &s->lv[li];
        if (L->inst)
            for (int v = 0; v < (L->c.shared ? 1 : s->nvcpu); v++)
                cache_free(L->inst[v]);
        free(L->inst);
        free(L->cnt);
        countmap_free(&L->maps[0]);
        countmap_free(&L->maps[1]);
    }
    free(s->mem);
    free(s->ops);
    free(s->log);
    free(s);
}

EXPORT void ms_log_enable(struct ms_sim *s, int on)
{
    s->logging = on;
}

EXPORT size_t ms_log_size(const struct ms_sim *s)
{
    return s->log_failed ? (size_t)-1 : s->nlog;
}

EXPORT size_t ms_log_take(struct ms_sim *s, struct ms_memop *out, size_t cap)
{
    size_t n = s->nlog < cap ? s->nlog : cap;
    memcpy(out, s->log, n * sizeof *out);
    s->nlog = 0;
    return n;
}

/* --- results ----------------------------------------------------------------------------------------------- */

EXPORT const uint64_t *ms_counters(const struct ms_sim *s, int level, int vcpu)
{
    if (level < 0 || level > s->nlv || vcpu < 0 || vcpu >= s->nvcpu)
        return NULL;
    return (level == s->nlv ? s->mem : s->lv[level].cnt) + (size_t)vcpu * NCOUNTERS;
}

EXPORT const uint64_t *ms_op_counts(const struct ms_sim *s, int vcpu)
{
    return vcpu >= 0 && vcpu < s->nvcpu ? s->ops + (size_t)vcpu * MS_NOPS : NULL;
}

EXPORT size_t ms_map_size(const struct ms_sim *s, int level, int which)
{
    return level >= 0 && level < s->nlv && (which == 0 || which == 1) ? s->lv[level].maps[which].n : 0;
}

EXPORT size_t ms_map_export(const struct ms_sim *s, int level, int which, uint64_t *out, size_t cap)
{
    if (level < 0 || level >= s->nlv || (which != 0 && which != 1))
        return 0;
    return countmap_export(&s->lv[level].maps[which], out, cap);
}

EXPORT int ms_probe(const struct ms_sim *s, int level, int vcpu, uint64_t addr)
{
    if (level < 0 || level >= s->nlv || vcpu < 0 || vcpu >= s->nvcpu)
        return -1;
    const struct level *L = &s->lv[level];
    const struct cache *c = L->inst[L->c.shared ? 0 : vcpu];
    uint64_t line = addr >> L->line_bits;
    size_t base = (line & L->set_mask) * L->c.ways;
    int ghost = -1, w = find(L, c, base, line, &ghost);
    return w < 0 ? 0 : c->state[base + (size_t)w];
}

EXPORT const char *ms_op_names(void)
{
    return OP_NAMES;
}

EXPORT const char *ms_counter_names(void)
{
    return COUNTER_NAMES;
}
