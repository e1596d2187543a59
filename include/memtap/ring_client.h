/*
 * memtap live-ring client: header-only C (C11 or GNU C, Linux) for `memtap record --ring NAME`.
 * Layout and protocol: trace.h and docs/ring.md. Build with -pthread (a thread keeps the consumer's heartbeat).
 *
 *     struct memtap_ring_client c;
 *     if (memtap_ring_connect(&c, "NAME", 5.0) != 0) { fprintf(stderr, "%s\n", c.error); return 1; }
 *     const struct memtap_record *r;
 *     uint32_t n;
 *     while ((r = memtap_ring_next(&c, &n))) {   // valid until the next call: the buffer is then released
 *         ... r[0 .. n-1] ...                     // fetch runs: memtap_ring_expand (below)
 *     }
 *     if (c.error[0]) { ... }                     // otherwise the recording ended (c.complete: normally)
 *     memtap_ring_close(&c);
 *
 * memtap_ring_open alone (no consumer slot) is enough for memtap_ring_command (start, stop, mark).
 */
#ifndef MEMTAP_RING_CLIENT_H
#define MEMTAP_RING_CLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

struct memtap_ring_client {
    int fd;
    size_t size;
    void *base;
    struct memtap_ring_header *hdr;
    struct memtap_ring_consumer *slots;
    const struct memtap_ring_buffer *descs;
    const struct memtap_record *records;
    int slot;                     /* -1: not attached */
    uint32_t generation;
    uint64_t joined_seq;          /* the first buffer this consumer gets */
    uint64_t next;                /* the buffer the next memtap_ring_next returns */
    bool holding;
    bool complete;                /* the stream ended normally (false: the producer died) */
    pthread_t beat;
    volatile bool beating;
    char error[256];              /* empty unless something failed */
};

#define MEMTAP_RING_LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define MEMTAP_RING_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static inline double memtap_ring_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void memtap_ring_futex_wait(uint32_t *word, uint32_t seen, long ns)
{
    struct timespec ts = {0, ns};
    syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static inline void memtap_ring_futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

static inline int memtap_ring_fail(struct memtap_ring_client *c, const char *what)
{
    snprintf(c->error, sizeof(c->error), "memtap ring: %s", what);
    return -1;
}

static inline bool memtap_ring_producer_alive(const struct memtap_ring_client *c)
{
    return kill((pid_t)c->hdr->producer_pid, 0) == 0 || errno != ESRCH;
}

/* Checks the header written by the plugin against this header's layout. */
static inline int memtap_ring_check(struct memtap_ring_client *c)
{
    const struct memtap_ring_header *h = c->hdr;
    if (h->version != MEMTAP_RING_VERSION) {
        char msg[128];
        snprintf(msg, sizeof(msg), "format version %u, this client reads version %u", h->version,
                 MEMTAP_RING_VERSION);
        return memtap_ring_fail(c, msg);
    }
    uint64_t slots_end = sizeof(*h) + MEMTAP_RING_MAX_CONSUMERS * sizeof(struct memtap_ring_consumer);
    uint64_t n = h->nbuffers, s = h->buffer_records;
    if (h->header_size != sizeof(*h) || h->record_size != sizeof(struct memtap_record) ||
        h->max_consumers != MEMTAP_RING_MAX_CONSUMERS || h->consumers_offset != sizeof(*h) ||
        h->buffers_offset != slots_end || n < 1 || s < 1 || h->segment_size != c->size ||
        h->records_offset < slots_end + n * sizeof(struct memtap_ring_buffer) ||
        h->records_offset + n * s * sizeof(struct memtap_record) > c->size) {
        return memtap_ring_fail(c, "inconsistent header (geometry does not fit the segment)");
    }
    c->slots = (struct memtap_ring_consumer *)((char *)c->base + h->consumers_offset);
    c->descs = (const struct memtap_ring_buffer *)((char *)c->base + h->buffers_offset);
    c->records = (const struct memtap_record *)((char *)c->base + h->records_offset);
    return 0;
}

static inline void memtap_ring_path(char *path, size_t len, const char *name)
{
    snprintf(path, len, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
}

/* Maps ring `name` (waiting up to a second for the plugin to finish creating it) and checks its format. */
static inline int memtap_ring_open(struct memtap_ring_client *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->slot = -1;
    c->base = MAP_FAILED;
    char path[300];
    memtap_ring_path(path, sizeof(path), name);
    c->fd = open(path, O_RDWR | O_CLOEXEC);
    if (c->fd < 0) {
        return memtap_ring_fail(c, errno == ENOENT ? "no such ring" : strerror(errno));
    }
    for (double deadline = memtap_ring_now() + 1.0;; usleep(5000)) {
        struct stat st;
        if (fstat(c->fd, &st) != 0) {
            return memtap_ring_fail(c, strerror(errno));
        }
        if ((size_t)st.st_size >= sizeof(struct memtap_ring_header)) {
            c->size = (size_t)st.st_size;
            c->base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
            if (c->base == MAP_FAILED) {
                return memtap_ring_fail(c, strerror(errno));
            }
            c->hdr = c->base;
            char magic[8];
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            memcpy(magic, c->hdr->magic, sizeof(magic));
            if (!memcmp(magic, MEMTAP_RING_MAGIC, sizeof(magic))) {
                return memtap_ring_check(c);
            }
            munmap(c->base, c->size);
            c->base = MAP_FAILED;
            static const char zero[8];
            if (memcmp(magic, zero, sizeof(magic))) {
                return memtap_ring_fail(c, "not a memtap ring (bad magic)");
            }
        }
        if (memtap_ring_now() > deadline) {
            return memtap_ring_fail(c, "the shared-memory object was never initialised");
        }
    }
}

static inline void *memtap_ring_heartbeat(void *arg)
{
    struct memtap_ring_client *c = arg;
    long period_ns = (long)c->hdr->heartbeat_ms * 1000000L / 6;
    struct timespec ts = {period_ns / 1000000000L, period_ns % 1000000000L};
    while (c->beating) {
        __atomic_add_fetch(&c->slots[c->slot].heartbeat, 1, __ATOMIC_RELEASE);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Claims a consumer slot and waits (up to timeout_s) until the plugin admits it. */
static inline int memtap_ring_attach(struct memtap_ring_client *c, double timeout_s)
{
    if (MEMTAP_RING_LOAD(c->hdr->state) == MEMTAP_RING_ENDED) {
        return memtap_ring_fail(c, "the recording has ended");
    }
    if (flock(c->fd, LOCK_EX) != 0) {
        return memtap_ring_fail(c, strerror(errno));
    }
    for (int i = 0; i < (int)MEMTAP_RING_MAX_CONSUMERS && c->slot < 0; i++) {
        uint32_t expected = MEMTAP_RING_SLOT_FREE;
        if (__atomic_compare_exchange_n(&c->slots[i].state, &expected, (uint32_t)MEMTAP_RING_SLOT_CLAIMING, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            c->slot = i;
        }
    }
    if (c->slot >= 0) {
        MEMTAP_RING_STORE(c->slots[c->slot].pid, (uint32_t)getpid());
        MEMTAP_RING_STORE(c->slots[c->slot].state, (uint32_t)MEMTAP_RING_SLOT_ATTACHING);
    }
    flock(c->fd, LOCK_UN);
    if (c->slot < 0) {
        return memtap_ring_fail(c, "all consumer slots are taken");
    }
    struct memtap_ring_consumer *s = &c->slots[c->slot];
    for (double deadline = memtap_ring_now() + timeout_s; MEMTAP_RING_LOAD(s->state) != MEMTAP_RING_SLOT_ATTACHED;) {
        if (MEMTAP_RING_LOAD(s->state) != MEMTAP_RING_SLOT_ATTACHING || memtap_ring_now() > deadline ||
            !memtap_ring_producer_alive(c)) {
            MEMTAP_RING_STORE(s->state, (uint32_t)MEMTAP_RING_SLOT_LEAVING);
            c->slot = -1;
            return memtap_ring_fail(c, "could not attach");
        }
        usleep(1000);
    }
    c->generation = MEMTAP_RING_LOAD(s->generation);
    c->joined_seq = c->next = MEMTAP_RING_LOAD(s->joined_seq);
    c->beating = true;
    if (pthread_create(&c->beat, NULL, memtap_ring_heartbeat, c) != 0) {
        c->beating = false;
        return memtap_ring_fail(c, "cannot start the heartbeat thread");
    }
    return 0;
}

/* Opens and attaches, waiting up to timeout_s for the ring to appear (a client may start before QEMU). */
static inline int memtap_ring_connect(struct memtap_ring_client *c, const char *name, double timeout_s)
{
    char path[300];
    memtap_ring_path(path, sizeof(path), name);
    for (double deadline = memtap_ring_now() + timeout_s; access(path, F_OK) != 0 && memtap_ring_now() < deadline;) {
        usleep(10000);
    }
    return memtap_ring_open(c, name) == 0 ? memtap_ring_attach(c, timeout_s) : -1;
}

/* Hands the last buffer back to the plugin (memtap_ring_next does this first). */
static inline void memtap_ring_release(struct memtap_ring_client *c)
{
    if (!c->holding) {
        return;
    }
    c->holding = false;
    MEMTAP_RING_STORE(c->slots[c->slot].read_seq, ++c->next);
    if (MEMTAP_RING_LOAD(c->hdr->producer_waiting)) {
        __atomic_add_fetch(&c->hdr->release_futex, 1, __ATOMIC_RELEASE);
        memtap_ring_futex_wake(&c->hdr->release_futex);
    }
}

/* The next buffer's records (count in *n), valid until the next call; NULL at the end of the stream or on an
 * error (then c->error says what). */
static inline const struct memtap_record *memtap_ring_next(struct memtap_ring_client *c, uint32_t *n)
{
    memtap_ring_release(c);
    struct memtap_ring_header *h = c->hdr;
    struct memtap_ring_consumer *s = &c->slots[c->slot];
    for (;;) {
        uint32_t seen = MEMTAP_RING_LOAD(h->publish_futex);
        if (MEMTAP_RING_LOAD(s->state) != MEMTAP_RING_SLOT_ATTACHED ||
            MEMTAP_RING_LOAD(s->generation) != c->generation) {
            memtap_ring_fail(c, "this consumer was detached by the plugin");
            return NULL;
        }
        if (c->next < MEMTAP_RING_LOAD(h->write_seq)) {
            break;
        }
        if (MEMTAP_RING_LOAD(h->state) == MEMTAP_RING_ENDED) {
            if (c->next >= MEMTAP_RING_LOAD(h->write_seq)) {
                c->complete = true;
                return NULL;
            }
            continue;
        }
        if (!memtap_ring_producer_alive(c)) {
            return NULL;
        }
        memtap_ring_futex_wait(&h->publish_futex, seen, 50000000L);
    }
    uint64_t index = c->next % h->nbuffers;
    const struct memtap_ring_buffer *d = &c->descs[index];
    if (d->seq != c->next || d->count > h->buffer_records) {
        memtap_ring_fail(c, "a buffer descriptor does not match its sequence");
        return NULL;
    }
    c->holding = true;
    *n = d->count;
    return c->records + index * h->buffer_records;
}

/* A fetch run (MEMTAP_KIND_FETCH_RUN, the ring's default form of fetches) or a run load/store
 * (MEMTAP_KIND_RUN_LOAD/STORE) as the records it stands for: writes them to out[0 .. return value - 1] (at most
 * MEMTAP_RUN_MAX). Any other record is copied as it is. */
static inline unsigned memtap_ring_expand(const struct memtap_record *r, struct memtap_record *out)
{
    bool fused = r->kind == MEMTAP_KIND_RUN_LOAD || r->kind == MEMTAP_KIND_RUN_STORE;
    if (r->kind != MEMTAP_KIND_FETCH_RUN && !fused) {
        out[0] = *r;
        return 1;
    }
    unsigned n = fused ? (r->fetches <= MEMTAP_FUSED_MAX ? r->fetches : MEMTAP_FUSED_MAX)
                       : (r->size <= MEMTAP_RUN_MAX ? r->size : MEMTAP_RUN_MAX);
    uint64_t vaddr = r->vaddr, paddr = r->paddr, pos = r->pos, icount = r->icount;
    bool phys = r->flags & MEMTAP_RF_PADDR;
    if (fused) {   /* the fetches end with the access's instruction */
        vaddr = r->pc;
        for (unsigned k = 0; k + 1 < n; k++) {
            vaddr -= MEMTAP_RUN_SIZE(r, k);
        }
        paddr = r->value_hi;
        phys = r->flags & MEMTAP_RF_RUN_PADDR;
        pos -= n;
        icount -= n - 1;
    }
    uint64_t offset = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned size = MEMTAP_RUN_SIZE(r, k);
        out[k] = (struct memtap_record){.pos = pos + k, .icount = icount + k, .vaddr = vaddr + offset,
                                        .paddr = phys ? paddr + offset : 0, .pc = vaddr + offset, .vcpu = r->vcpu,
                                        .kind = MEMTAP_KIND_FETCH, .size = (uint8_t)size, .priv = r->priv,
                                        .flags = phys ? MEMTAP_RF_PADDR : 0};
        offset += size;
    }
    if (fused) {
        out[n] = *r;
        out[n].kind = r->kind == MEMTAP_KIND_RUN_LOAD ? MEMTAP_KIND_LOAD : MEMTAP_KIND_STORE;
        out[n].flags &= (uint8_t)~MEMTAP_RF_RUN_PADDR;
        out[n].value = out[n].value_hi = 0;
        out[n].fetches = 0;
        n++;
    }
    return n;
}

/* Records dropped (lossy mode) while this consumer was attached. */
static inline uint64_t memtap_ring_lost(const struct memtap_ring_client *c)
{
    return c->slot >= 0 ? MEMTAP_RING_LOAD(c->slots[c->slot].lost) : 0;
}

/* Sends a control command (MEMTAP_RING_CMD_*); returns its MEMTAP_RING_OK / MEMTAP_RING_ERR_* result, or -1
 * (c->error) when the plugin does not answer within 3 s. */
static inline int memtap_ring_command(struct memtap_ring_client *c, uint32_t cmd, uint64_t arg)
{
    struct memtap_ring_header *h = c->hdr;
    if (flock(c->fd, LOCK_EX) != 0) {
        return memtap_ring_fail(c, strerror(errno));
    }
    uint32_t seq = MEMTAP_RING_LOAD(h->ctl_seq) + 1;
    MEMTAP_RING_STORE(h->ctl_cmd, cmd);
    MEMTAP_RING_STORE(h->ctl_arg, arg);
    MEMTAP_RING_STORE(h->ctl_seq, seq);
    memtap_ring_futex_wake(&h->ctl_seq);
    int result = -1;
    for (double deadline = memtap_ring_now() + 3.0; memtap_ring_now() < deadline && memtap_ring_producer_alive(c);) {
        uint32_t ack = MEMTAP_RING_LOAD(h->ctl_ack);
        if (ack == seq) {
            result = (int)MEMTAP_RING_LOAD(h->ctl_result);
            break;
        }
        memtap_ring_futex_wait(&h->ctl_ack, ack, 10000000L);
    }
    flock(c->fd, LOCK_UN);
    return result < 0 ? memtap_ring_fail(c, "the plugin did not answer") : result;
}

/* Leaves the ring (the plugin stops waiting for this consumer) and unmaps it. */
static inline void memtap_ring_close(struct memtap_ring_client *c)
{
    if (c->beating) {
        c->beating = false;
        pthread_join(c->beat, NULL);
    }
    if (c->slot >= 0 && c->base != MAP_FAILED) {
        struct memtap_ring_consumer *s = &c->slots[c->slot];
        uint32_t attached = MEMTAP_RING_SLOT_ATTACHED;
        if (MEMTAP_RING_LOAD(s->generation) == c->generation) {
            __atomic_compare_exchange_n(&s->state, &attached, (uint32_t)MEMTAP_RING_SLOT_LEAVING, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        }
        __atomic_add_fetch(&c->hdr->release_futex, 1, __ATOMIC_RELEASE);
        memtap_ring_futex_wake(&c->hdr->release_futex);
        c->slot = -1;
    }
    if (c->base != MAP_FAILED) {
        munmap(c->base, c->size);
        c->base = MAP_FAILED;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

#endif /* MEMTAP_RING_CLIENT_H */
