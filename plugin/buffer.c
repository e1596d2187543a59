/* Event buffers: a fixed pool handed from vCPU threads (which fill them) to the sink (which writes them) and back.
 * When every buffer is full, the filling vCPU writes full buffers itself until one is free, or waits while the
 * sink holds them all: the guest is slowed, no record is dropped. */
#include <pthread.h>
#include <stdlib.h>

#include "memtap_plugin.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static pthread_cond_t filled = PTHREAD_COND_INITIALIZER;
static struct mt_buffer *free_list;
static struct mt_buffer *full_head, *full_tail;
static bool closing;
static size_t capacity;
static uint64_t submitted;      /* tickets handed out */

static void *column(size_t item)
{
    return malloc(capacity * item);
}

int mt_buffers_init(unsigned nbuffers, size_t events_per_buffer)
{
    capacity = events_per_buffer;
    for (unsigned i = 0; i < nbuffers; i++) {
        struct mt_buffer *b = calloc(1, sizeof(*b));
        if (!b) {
            return -1;
        }
        b->kind = column(1);
        b->flags = column(1);
        b->count = column(2);
        b->insn = column(4);
        b->icount = column(2);
        b->pos = column(2);
        b->vaddr = column(8);
        b->paddr = column(8);
        b->icount_wide = column(8);
        b->pos_wide = column(8);
        if (!b->kind || !b->flags || !b->count || !b->insn || !b->icount || !b->pos || !b->vaddr || !b->paddr ||
            !b->icount_wide || !b->pos_wide) {
            return -1;
        }
        if (mt_cfg.values && (!(b->value = column(8)) || !(b->value_hi = column(8)))) {
            return -1;
        }
        b->next = free_list;
        free_list = b;
    }
    return 0;
}

/* The oldest full buffer, taken off the queue (NULL if none); call with the lock held. */
static struct mt_buffer *pop_full_locked(void)
{
    struct mt_buffer *b = full_head;
    if (b) {
        full_head = b->next;
        if (!full_head) {
            full_tail = NULL;
        }
    }
    return b;
}

/* A vCPU that finds no free buffer does the sink's work on the oldest full one instead of idling. */
struct mt_buffer *mt_buffer_get(unsigned vcpu)
{
    pthread_mutex_lock(&lock);
    while (!free_list) {
        struct mt_buffer *full = pop_full_locked();
        if (full) {
            pthread_mutex_unlock(&lock);
            mt_sink_process(full);
            pthread_mutex_lock(&lock);
            continue;
        }
        pthread_cond_wait(&freed, &lock);
    }
    struct mt_buffer *b = free_list;
    free_list = b->next;
    pthread_mutex_unlock(&lock);
    b->n = b->m = b->wi = b->wp = b->wv = 0;
    b->vcpu = vcpu;
    b->next = NULL;
    return b;
}

void mt_buffer_submit(struct mt_buffer *b)
{
    pthread_mutex_lock(&lock);
    b->ticket = submitted++;
    if (full_tail) {
        full_tail->next = b;
    } else {
        full_head = b;
    }
    full_tail = b;
    pthread_cond_signal(&filled);
    pthread_mutex_unlock(&lock);
}

/* Blocks until a full buffer is queued; NULL once closing and drained. */
struct mt_buffer *mt_buffer_next_full(void)
{
    pthread_mutex_lock(&lock);
    while (!full_head && !closing) {
        pthread_cond_wait(&filled, &lock);
    }
    struct mt_buffer *b = pop_full_locked();
    pthread_mutex_unlock(&lock);
    return b;
}

void mt_buffer_release(struct mt_buffer *b)
{
    pthread_mutex_lock(&lock);
    b->next = free_list;
    free_list = b;
    pthread_cond_signal(&freed);
    pthread_mutex_unlock(&lock);
}

uint64_t mt_buffers_submitted(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = submitted;
    pthread_mutex_unlock(&lock);
    return n;
}

void mt_buffers_close(void)
{
    pthread_mutex_lock(&lock);
    closing = true;
    pthread_cond_broadcast(&filled);
    pthread_mutex_unlock(&lock);
}

/* Hands over the vCPU's buffer, if any; each chunk's difference columns start again from zero. */
void mt_vcpu_flush(struct mt_vcpu *v)
{
    if (v->buf) {
        v->buf->n = v->n;
        v->buf->m = v->m;
        v->buf->wi = v->wi;
        v->buf->wp = v->wp;
        v->buf->wv = v->wv;
        if (v->n) {
            mt_buffer_submit(v->buf);
        } else {
            mt_buffer_release(v->buf);
        }
        v->buf = NULL;
    }
    v->n = v->m = v->wi = v->wp = v->wv = v->cap = 0;
    v->last_icount = v->last_pos = 0;
}

/* Hands the full buffer to the sink and gives the vCPU a fresh one. */
void mt_vcpu_swap(struct mt_vcpu *v)
{
    mt_vcpu_flush(v);
    v->buf = mt_buffer_get((unsigned)(v - mt_vcpus));
    v->cols = *v->buf;
    v->cap = capacity;
}

