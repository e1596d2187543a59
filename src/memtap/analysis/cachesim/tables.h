/* Hash tables for the cache simulator: a set of lines (compulsory misses), a fully-associative LRU shadow
 * (capacity vs conflict misses) and a key -> three counters map (misses per PC or address range).
 * All use open addressing with linear probing over power-of-two tables; keys are stored as key + 1 so that
 * 0 marks an empty slot.
 */
#ifndef MEMTAP_CACHESIM_TABLES_H
#define MEMTAP_CACHESIM_TABLES_H

#include <stddef.h>
#include <stdint.h>

struct lineset {
    uint64_t *keys;
    size_t cap, n;
};

/* Inserts line; returns 1 when it was not there yet, -1 when out of memory. */
int lineset_add(struct lineset *t, uint64_t line);
void lineset_free(struct lineset *t);

/* A fully-associative LRU cache of `lines` lines: O(1) per access (hash index + doubly-linked list). */
struct falru {
    uint32_t *slot;        /* hash table: node index + 1, 0 empty */
    uint64_t *key;         /* per node */
    uint32_t *prev, *next; /* per node, most recent at head */
    size_t lines, used, mask;
    uint32_t head, tail;
};

int falru_init(struct falru *f, size_t lines);
/* Accesses line; returns 1 on a hit. */
int falru_access(struct falru *f, uint64_t line);
void falru_free(struct falru *f);

struct countmap {
    uint64_t *rows; /* cap rows of (key + 1, fetch, load, store) */
    size_t cap, n;
};

int countmap_add(struct countmap *m, uint64_t key, int kind);
size_t countmap_export(const struct countmap *m, uint64_t *out, size_t cap);
void countmap_clear(struct countmap *m);
void countmap_free(struct countmap *m);

static inline uint64_t tables_hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

#endif
