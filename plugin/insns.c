/* The instruction table: every translated instruction gets a dense global id and one struct memtap_insn, and
 * those with a translated physical address one struct memtap_insn_paddr. Translation appends; the sink takes what
 * was added since its last chunk, always before it writes events that may refer to it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "memtap_plugin.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t total;               /* ids handed out */

/* Rows added and not yet taken by the sink. */
struct pending {
    void *rows;
    uint32_t n, cap;
};
static struct pending insns, paddrs;   /* struct memtap_insn, struct memtap_insn_paddr */

/* Room for n more rows of `size` bytes at the end of p; the caller holds the lock. */
static void *pending_grow(struct pending *p, uint32_t n, size_t size)
{
    if (p->n + n > p->cap) {
        uint32_t ncap = p->cap ? p->cap * 2 : 4096;
        while (ncap < p->n + n) {
            ncap *= 2;
        }
        void *t = realloc(p->rows, ncap * size);
        if (!t) {
            abort();
        }
        p->rows = t;
        p->cap = ncap;
    }
    void *end = (char *)p->rows + p->n * size;
    p->n += n;
    return end;
}

/* A malloc'd copy of p's rows (NULL when none), which it then forgets. */
static void *pending_take(struct pending *p, size_t size, uint32_t *count)
{
    pthread_mutex_lock(&lock);
    void *copy = NULL;
    *count = p->n;
    if (p->n) {
        copy = malloc(p->n * size);
        if (copy) {
            memcpy(copy, p->rows, p->n * size);
            p->n = 0;
        } else {
            *count = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return copy;
}

/* With the ring on, every entry is also kept, in pages that never move, for lookups by id without a lock: an
 * event names only ids whose entries were stored before the event was made. */
#define PAGE_BITS 16
static void *pages[1u << (32 - PAGE_BITS)];   /* struct memtap_insn[1 << PAGE_BITS] each */
#define SLOT(id) ((id) & ((1u << PAGE_BITS) - 1))
static bool keep;

void mt_insns_keep(void)
{
    keep = true;
}

const struct memtap_insn *mt_insn_at(uint32_t id)
{
    return (const struct memtap_insn *)pages[id >> PAGE_BITS] + SLOT(id);
}

/* ... and, per kept entry, the ring record of the fetch run that can start there (ring.c): made once per
 * translation, so the ring copies one record where it would otherwise look up a run, an instruction and its
 * physical address. */
static void *run_pages[1u << (32 - PAGE_BITS)];   /* struct memtap_record */

const struct memtap_record *mt_fetch_record_at(uint32_t id)
{
    return (const struct memtap_record *)run_pages[id >> PAGE_BITS] + SLOT(id);
}

/* Translated physical addresses of kept entries with MEMTAP_INSN_PADDR (QEMU >= 10.1), by id. */
static void *paddr_pages[1u << (32 - PAGE_BITS)];   /* uint64_t */

bool mt_insn_fetch_paddr(const struct memtap_insn *in, uint64_t *paddr)
{
    if (in->flags & MEMTAP_INSN_PHYS) {
        *paddr = in->vaddr;
        return true;
    }
    if (in->flags & MEMTAP_INSN_PADDR) {
        *paddr = ((const uint64_t *)paddr_pages[in->id >> PAGE_BITS])[SLOT(in->id)];
        return true;
    }
    return false;
}

/* A lazily allocated entry of a page table indexed by id. */
static void *entry(void **table, uint32_t id, size_t size)
{
    void **page = &table[id >> PAGE_BITS];
    if (!*page && !(*page = calloc(1u << PAGE_BITS, size))) {
        abort();
    }
    return (char *)*page + SLOT(id) * size;
}

/* Whether instruction b can follow a in a run: contiguous, same privilege level, same kind of physical address,
 * and (translated ones) the same offset from the virtual address: one mapping. */
static bool continues(const struct memtap_insn *a, const struct memtap_insn *b, uint64_t a_delta, uint64_t b_delta)
{
    return b->vaddr == a->vaddr + a->size && b->priv == a->priv &&
           !((a->flags ^ b->flags) & (MEMTAP_INSN_PHYS | MEMTAP_INSN_PADDR)) && a_delta == b_delta;
}

/* Runs of one block's rows, from its last instruction back: each extends the next one's by one. deltas: each
 * row's translated paddr - vaddr (NULL: none is translated). Rows' entries and physical addresses are kept
 * already. */
static void keep_runs(const struct memtap_insn *rows, uint32_t n, const uint64_t *deltas)
{
    unsigned __int128 next_sizes = 0;
    uint32_t next_n = 0;
    for (uint32_t i = n; i-- > 0;) {
        const struct memtap_insn *r = &rows[i];
        bool runnable = r->size >= 1 && r->size <= 15;
        bool joins = runnable && next_n && i + 1 < n &&
                     continues(r, &rows[i + 1], deltas ? deltas[i] : 0, deltas ? deltas[i + 1] : 0);
        uint32_t len = !runnable ? 0 : joins ? (next_n < MEMTAP_RUN_MAX ? next_n + 1 : MEMTAP_RUN_MAX) : 1;
        unsigned __int128 sizes = runnable ? (unsigned __int128)r->size | (joins ? next_sizes << 4 : 0) : 0;
        if (len < MEMTAP_RUN_MAX) {
            sizes &= ((unsigned __int128)1 << (4 * len)) - 1;
        }
        uint64_t paddr = 0;
        bool phys = mt_insn_fetch_paddr(r, &paddr);
        struct memtap_record *rec = entry(run_pages, r->id, sizeof(*rec));
        *rec = (struct memtap_record){.vaddr = r->vaddr, .pc = r->vaddr, .paddr = paddr, .priv = r->priv,
                                      .flags = phys ? MEMTAP_RF_PADDR : 0};
        if (len) {
            rec->kind = MEMTAP_KIND_FETCH_RUN;
            rec->size = (uint8_t)len;
            rec->value = (uint64_t)sizes;
            rec->value_hi = (uint64_t)(sizes >> 64);
        } else {
            rec->kind = MEMTAP_KIND_FETCH;
            rec->size = r->size;
        }
        next_sizes = sizes;
        next_n = len;
    }
}

static void keep_entries(const struct memtap_insn *rows, uint32_t n, const struct memtap_insn_paddr *pa, uint32_t np)
{
    uint64_t *deltas = np ? calloc(n, sizeof(*deltas)) : NULL;
    if (np && !deltas) {
        abort();
    }
    for (uint32_t k = 0; k < np; k++) {
        *(uint64_t *)entry(paddr_pages, pa[k].id, sizeof(uint64_t)) = pa[k].paddr;
        deltas[pa[k].id - rows[0].id] = pa[k].paddr - rows[pa[k].id - rows[0].id].vaddr;
    }
    for (uint32_t i = 0; i < n; i++) {
        *(struct memtap_insn *)entry(pages, rows[i].id, sizeof(rows[i])) = rows[i];
    }
    keep_runs(rows, n, deltas);
    free(deltas);
}

/* Appends one block's n entries, assigning their ids, and the physical addresses of those flagged
 * MEMTAP_INSN_PADDR (np rows whose ids, relative to the block, are made global here); returns the first id. */
uint32_t mt_insns_add(const struct memtap_insn *rows, uint32_t n, struct memtap_insn_paddr *pa, uint32_t np)
{
    pthread_mutex_lock(&lock);
    struct memtap_insn *t = pending_grow(&insns, n, sizeof(*t));
    uint32_t first = total;
    memcpy(t, rows, n * sizeof(*rows));
    for (uint32_t i = 0; i < n; i++) {
        t[i].id = first + i;
    }
    for (uint32_t k = 0; k < np; k++) {
        pa[k].id += first;
    }
    if (np) {
        memcpy(pending_grow(&paddrs, np, sizeof(*pa)), pa, np * sizeof(*pa));
    }
    if (keep && n) {
        keep_entries(t, n, pa, np);
    }
    total += n;
    pthread_mutex_unlock(&lock);
    return first;
}

/* Returns a malloc'd copy of the entries added since the previous call (NULL when none). */
struct memtap_insn *mt_insns_take(uint32_t *count)
{
    return pending_take(&insns, sizeof(struct memtap_insn), count);
}

/* The same for physical addresses. Take these first: every row then names an instruction the next
 * mt_insns_take (or an earlier one) returns. */
struct memtap_insn_paddr *mt_insns_take_paddrs(uint32_t *count)
{
    return pending_take(&paddrs, sizeof(struct memtap_insn_paddr), count);
}
