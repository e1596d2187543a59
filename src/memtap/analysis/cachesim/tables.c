/* Hash tables of the cache simulator (see tables.h). */
#include "tables.h"

#include <stdlib.h>
#include <string.h>

/* --- lineset ------------------------------------------------------------------------------------------ */

static int lineset_grow(struct lineset *t)
{
    size_t cap = t->cap ? 2 * t->cap : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    if (!keys)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t k = t->keys[i];
        if (!k)
            continue;
        size_t j = tables_hash(k) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = k;
    }
    free(t->keys);
    t->keys = keys;
    t->cap = cap;
    return 0;
}

int lineset_add(struct lineset *t, uint64_t line)
{
    if (2 * (t->n + 1) > t->cap && lineset_grow(t))
        return -1;
    uint64_t k = line + 1;
    size_t j = tables_hash(k) & (t->cap - 1);
    while (t->keys[j]) {
        if (t->keys[j] == k)
            return 0;
        j = (j + 1) & (t->cap - 1);
    }
    t->keys[j] = k;
    t->n++;
    return 1;
}

void lineset_free(struct lineset *t)
{
    free(t->keys);
    memset(t, 0, sizeof *t);
}

/* --- fully-associative LRU shadow ---------------------------------------------------------------------- */

#define NIL UINT32_MAX

int falru_init(struct falru *f, size_t lines)
{
    size_t cap = 4;
    while (cap < 2 * lines)
        cap *= 2;
    memset(f, 0, sizeof *f);
    f->slot = calloc(cap, sizeof *f->slot);
    f->key = calloc(lines, sizeof *f->key);
    f->prev = calloc(lines, sizeof *f->prev);
    f->next = calloc(lines, sizeof *f->next);
    f->lines = lines;
    f->mask = cap - 1;
    f->head = f->tail = NIL;
    return f->slot && f->key && f->prev && f->next ? 0 : -1;
}

/* Slot of key, or of the empty slot where it would go. */
static size_t falru_find(const struct falru *f, uint64_t key)
{
    size_t j = tables_hash(key) & f->mask;
    while (f->slot[j] && f->key[f->slot[j] - 1] != key)
        j = (j + 1) & f->mask;
    return j;
}

/* Deletes slot j, shifting later entries of its probe run back so lookups need no tombstones. */
static void falru_unslot(struct falru *f, size_t j)
{
    size_t i = j;
    for (;;) {
        f->slot[i] = 0;
        size_t k = i;
        for (;;) {
            k = (k + 1) & f->mask;
            if (!f->slot[k])
                return;
            size_t home = tables_hash(f->key[f->slot[k] - 1]) & f->mask;
            /* k may move to i only if its home is not cyclically in (i, k]. */
            if (i <= k ? (home <= i || home > k) : (home <= i && home > k))
                break;
        }
        f->slot[i] = f->slot[k];
        i = k;
    }
}

static void falru_unlink(struct falru *f, uint32_t n)
{
    if (f->prev[n] != NIL)
        f->next[f->prev[n]] = f->next[n];
    else
        f->head = f->next[n];
    if (f->next[n] != NIL)
        f->prev[f->next[n]] = f->prev[n];
    else
        f->tail = f->prev[n];
}

static void falru_push(struct falru *f, uint32_t n)
{
    f->prev[n] = NIL;
    f->next[n] = f->head;
    if (f->head != NIL)
        f->prev[f->head] = n;
    f->head = n;
    if (f->tail == NIL)
        f->tail = n;
}

int falru_access(struct falru *f, uint64_t line)
{
    size_t j = falru_find(f, line);
    if (f->slot[j]) {
        uint32_t n = f->slot[j] - 1;
        if (f->head != n) {
            falru_unlink(f, n);
            falru_push(f, n);
        }
        return 1;
    }
    uint32_t n;
    if (f->used < f->lines) {
        n = (uint32_t)f->used++;
    } else {
        n = f->tail;
        falru_unlink(f, n);
        falru_unslot(f, falru_find(f, f->key[n]));
        j = falru_find(f, line);
    }
    f->key[n] = line;
    f->slot[j] = n + 1;
    falru_push(f, n);
    return 0;
}

void falru_free(struct falru *f)
{
    free(f->slot);
    free(f->key);
    free(f->prev);
    free(f->next);
    memset(f, 0, sizeof *f);
}

/* --- key -> (fetch, load, store) counters -------------------------------------------------------------- */

static int countmap_grow(struct countmap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 256;
    uint64_t *rows = calloc(4 * cap, sizeof *rows);
    if (!rows)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        const uint64_t *r = m->rows + 4 * i;
        if (!r[0])
            continue;
        size_t j = tables_hash(r[0]) & (cap - 1);
        while (rows[4 * j])
            j = (j + 1) & (cap - 1);
        memcpy(rows + 4 * j, r, 4 * sizeof *r);
    }
    free(m->rows);
    m->rows = rows;
    m->cap = cap;
    return 0;
}

int countmap_add(struct countmap *m, uint64_t key, int kind)
{
    if (2 * (m->n + 1) > m->cap && countmap_grow(m))
        return -1;
    uint64_t k = key + 1;
    size_t j = tables_hash(k) & (m->cap - 1);
    while (m->rows[4 * j] && m->rows[4 * j] != k)
        j = (j + 1) & (m->cap - 1);
    if (!m->rows[4 * j]) {
        m->rows[4 * j] = k;
        m->n++;
    }
    m->rows[4 * j + 1 + kind]++;
    return 0;
}

size_t countmap_export(const struct countmap *m, uint64_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->cap && n < cap; i++) {
        const uint64_t *r = m->rows + 4 * i;
        if (!r[0])
            continue;
        out[4 * n] = r[0] - 1;
        memcpy(out + 4 * n + 1, r + 1, 3 * sizeof *r);
        n++;
    }
    return n;
}

void countmap_clear(struct countmap *m)
{
    if (m->rows)
        memset(m->rows, 0, 4 * m->cap * sizeof *m->rows);
    m->n = 0;
}

void countmap_free(struct countmap *m)
{
    free(m->rows);
    memset(m, 0, sizeof *m);
}
