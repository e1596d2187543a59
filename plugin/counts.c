/* Counts mode: how often each block was entered and how often it reached its last instruction, and how many
 * loads and stores each instruction made, per vCPU, with no record order. Everything happens in QEMU's inline
 * operations (two adds per executed block, one per access), so no C code runs on the guest's hot path. Each
 * translated block gets a scoreboard of 3 x n counters per vCPU: executed[n] (only [0], entries, and [n-1],
 * completions, are counted; a one-instruction block has only entries), loads[n], stores[n].
 *
 * A snapshot thread writes the increments since its previous snapshot as a COUNTS chunk every second, so a run
 * that is killed keeps all but its last second; the final snapshot is written at exit. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memtap_plugin.h"

struct mt_count_block {
    struct qemu_plugin_scoreboard *score;   /* per vCPU: executed[n], loads[n], stores[n] */
    uint64_t *seen;                          /* per vCPU, the same 3n values at the previous snapshot */
    unsigned seen_vcpus;
    uint32_t first_id;
    uint16_t n;
    struct mt_count_block *next;
};

static _Atomic(struct mt_count_block *) blocks;    /* newest first; nodes are never removed while running */
static pthread_mutex_t snapshot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t thread;
static _Atomic bool stopping;
static bool started;
static uint64_t totals[3];                         /* block entries, loads, stores written so far */

/* Instruments one translated block whose instructions have ids first_id .. first_id + n - 1. */
void mt_counts_tb(struct qemu_plugin_tb *tb, uint32_t first_id, uint16_t n)
{
    if (!n) {
        return;
    }
    struct mt_count_block *b = calloc(1, sizeof(*b));
    if (!b || !(b->score = qemu_plugin_scoreboard_new(3u * n * sizeof(uint64_t)))) {
        abort();
    }
    b->first_id = first_id;
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_u64 executed = {b->score, i * sizeof(uint64_t)};
        qemu_plugin_u64 loads = {b->score, (n + i) * sizeof(uint64_t)};
        qemu_plugin_u64 stores = {b->score, (2u * n + i) * sizeof(uint64_t)};
        if (i == 0 || i == n - 1u) {
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, executed, 1);
        }
        qemu_plugin_register_vcpu_mem_inline_per_vcpu(insn, QEMU_PLUGIN_MEM_R, QEMU_PLUGIN_INLINE_ADD_U64, loads, 1);
        qemu_plugin_register_vcpu_mem_inline_per_vcpu(insn, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_INLINE_ADD_U64, stores,
                                                      1);
    }
    struct mt_count_block *head = atomic_load(&blocks);
    do {
        b->next = head;
    } while (!atomic_compare_exchange_weak(&blocks, &head, b));
}

/* Appends the rows of one block whose counters moved since the last snapshot; returns the new row count. */
static size_t block_rows(struct mt_count_block *b, unsigned nvcpus, struct memtap_count **rows, size_t nrows,
                         size_t *cap)
{
    size_t per = 3u * b->n;
    if (b->seen_vcpus < nvcpus) {
        uint64_t *s = realloc(b->seen, nvcpus * per * sizeof(uint64_t));
        if (!s) {
            return nrows;   /* try again at the next snapshot; nothing is lost */
        }
        memset(s + b->seen_vcpus * per, 0, (nvcpus - b->seen_vcpus) * per * sizeof(uint64_t));
        b->seen = s;
        b->seen_vcpus = nvcpus;
    }
    for (unsigned v = 0; v < nvcpus; v++) {
        const uint64_t *now = qemu_plugin_scoreboard_find(b->score, v);
        uint64_t *seen = b->seen + v * per;
        for (uint16_t i = 0; i < b->n; i++) {
            uint64_t d[3];
            for (int k = 0; k < 3; k++) {
                uint64_t x = atomic_load_explicit((_Atomic uint64_t *)&now[k * b->n + i], memory_order_relaxed);
                d[k] = x - seen[k * b->n + i];
                seen[k * b->n + i] = x;
            }
            if (!(d[0] | d[1] | d[2])) {
                continue;
            }
            if (nrows == *cap) {
                size_t ncap = *cap ? 2 * *cap : 4096;
                struct memtap_count *r = realloc(*rows, ncap * sizeof(**rows));
                if (!r) {
                    abort();
                }
                *rows = r;
                *cap = ncap;
            }
            (*rows)[nrows++] = (struct memtap_count){
                .insn = b->first_id + i, .vcpu = (uint16_t)v, .executed = d[0], .loads = d[1], .stores = d[2],
            };
            totals[0] += i == 0 ? d[0] : 0;
            totals[1] += d[1];
            totals[2] += d[2];
        }
    }
    return nrows;
}

/* Writes the increments since the previous snapshot as one COUNTS chunk. */
static void snapshot(void)
{
    pthread_mutex_lock(&snapshot_lock);
    unsigned nvcpus = (unsigned)qemu_plugin_num_vcpus();
    struct memtap_count *rows = NULL;
    size_t n = 0, cap = 0;
    for (struct mt_count_block *b = atomic_load(&blocks); b; b = b->next) {
        n = block_rows(b, nvcpus, &rows, n, &cap);
    }
    mt_sink_write_counts(rows, n);
    free(rows);
    pthread_mutex_unlock(&snapshot_lock);
}

static void *snapshot_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        for (int i = 0; i < 20 && !atomic_load(&stopping); i++) {
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
        if (!atomic_load(&stopping)) {
            snapshot();
        }
    }
    return NULL;
}

int mt_counts_start(void)
{
    started = pthread_create(&thread, NULL, snapshot_main, NULL) == 0;
    return started ? 0 : -1;
}

/* The final snapshot, at exit; the totals feed the END chunk. */
void mt_counts_finish(uint64_t out_totals[3])
{
    if (started) {
        atomic_store(&stopping, true);
        pthread_join(thread, NULL);
        started = false;
    }
    snapshot();
    memcpy(out_totals, totals, sizeof(totals));
}
