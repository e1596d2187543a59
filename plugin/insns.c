/* The instruction table: every translated instruction gets a dense global id and one struct memtap_insn.
 * Translation appends; the sink takes what was added since its last chunk, always before it writes events
 * that may refer to it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "memtap_plugin.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct memtap_insn *table;   /* entries not yet taken by the sink */
static uint32_t pending, cap;
static uint32_t total;               /* ids handed out */

/* With the ring on, every entry is also kept, in pages that never move, for lookups by id without a lock: an
 * event names only ids whose entries were stored before the event was made. */
#define PAGE_BITS 16
static struct memtap_insn *pages[1u << (32 - PAGE_BITS)];
static bool keep;

void mt_insns_keep(void)
{
    keep = true;
}

const struct memtap_insn *mt_insn_at(uint32_t id)
{
    return &pages[id >> PAGE_BITS][id & ((1u << PAGE_BITS) - 1)];
}

static void keep_entries(const struct memtap_insn *rows, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = rows[i].id;
        struct memtap_insn **page = &pages[id >> PAGE_BITS];
        if (!*page && !(*page = calloc(1u << PAGE_BITS, sizeof(**page)))) {
            abort();
        }
        (*page)[id & ((1u << PAGE_BITS) - 1)] = rows[i];
    }
}

/* Appends n entries, assigning their ids; returns the first id. */
uint32_t mt_insns_add(const struct memtap_insn *insns, uint32_t n)
{
    pthread_mutex_lock(&lock);
    if (pending + n > cap) {
        uint32_t ncap = cap ? cap * 2 : 4096;
        while (ncap < pending + n) {
            ncap *= 2;
        }
        struct memtap_insn *t = realloc(table, ncap * sizeof(*t));
        if (!t) {
            abort();
        }
        table = t;
        cap = ncap;
    }
    uint32_t first = total;
    memcpy(table + pending, insns, n * sizeof(*insns));
    for (uint32_t i = 0; i < n; i++) {
        table[pending + i].id = first + i;
    }
    if (keep) {
        keep_entries(table + pending, n);
    }
    pending += n;
    total += n;
    pthread_mutex_unlock(&lock);
    return first;
}

/* Returns a malloc'd copy of the entries added since the previous call (NULL when none). */
struct memtap_insn *mt_insns_take(uint32_t *count)
{
    pthread_mutex_lock(&lock);
    struct memtap_insn *copy = NULL;
    *count = pending;
    if (pending) {
        copy = malloc(pending * sizeof(*copy));
        if (copy) {
            memcpy(copy, table, pending * sizeof(*copy));
            pending = 0;
        } else {
            *count = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return copy;
}
