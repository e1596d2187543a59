/* The sink: turns full event buffers into checksummed, compressed chunks (file sink) or drops them (null sink,
 * which measures the tracing cost alone).
 *
 * Compression is the expensive part, so any thread may do it: the sink thread, and a vCPU thread that would
 * otherwise wait for a free buffer. Chunks are still written in the order their buffers were submitted (a ticket
 * per buffer), which keeps each vCPU's chunks in program order and every instruction definition ahead of its
 * first use. Each chunk is written whole, so a file whose QEMU was killed is readable up to its last chunk. On a
 * write error (disk full, file too large) the file is cut back to its last whole chunk, the error is reported
 * once, and the vCPUs are never blocked by a dead sink. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "memtap_plugin.h"

static int fd = -1;
static pthread_t thread;
static bool started;
static uint64_t chunk_seq;
static off_t good_end;          /* file offset just past the last whole chunk */
static int write_errno;         /* first write error, 0 if none */
static uint64_t events_written;

/* Writes happen under write_lock, one ticket at a time. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn = PTHREAD_COND_INITIALIZER;
static uint64_t next_ticket;

/* Each compressing thread's own zstd context and output buffer. */
struct packer {
    ZSTD_CCtx *cctx;
    void *out;
    size_t cap;
};
static __thread struct packer packer;     /* events chunks, compressed outside the lock */
static struct packer small_packer;         /* JSON and instruction chunks, under write_lock */

static int write_all(const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void fail(int err)
{
    if (write_errno) {
        return;
    }
    write_errno = err;
    if (ftruncate(fd, good_end) != 0) {
        /* Nothing more can be done: the reader treats a partial last chunk as truncation. */
    }
    fprintf(stderr, "memtap: cannot write trace %s: %s; it keeps the %llu chunks written before\n", mt_cfg.out,
            strerror(err), (unsigned long long)chunk_seq);
}

/* A chunk's payload comes in pieces (an event buffer's columns), compressed as one zstd frame without copying. */
struct piece {
    const void *data;
    size_t len;
};

static size_t compress_pieces(struct packer *k, const struct piece *p, int np, size_t total)
{
    size_t bound = ZSTD_compressBound(total);
    if (!k->cctx && !(k->cctx = ZSTD_createCCtx())) {
        return 0;
    }
    if (bound > k->cap) {
        free(k->out);
        k->out = malloc(bound);
        k->cap = k->out ? bound : 0;
        if (!k->out) {
            return 0;
        }
    }
    ZSTD_CCtx *cctx = k->cctx;
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, mt_cfg.zstd_level);
    ZSTD_CCtx_setPledgedSrcSize(cctx, total);
    ZSTD_outBuffer out = {k->out, k->cap, 0};
    for (int i = 0; i < np; i++) {
        ZSTD_inBuffer in = {p[i].data, p[i].len, 0};
        ZSTD_EndDirective end = i == np - 1 ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;
        do {
            left = ZSTD_compressStream2(cctx, &out, &in, end);
            if (ZSTD_isError(left)) {
                return 0;
            }
        } while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
    }
    return out.pos;
}

/* A chunk ready to write: its header (final but for seq, set when written) and its stored payload pieces. */
struct prepared {
    struct memtap_chunk_header h;
    struct piece p[12];
    int np;
};

/* Compresses with packer k; the result points into k's buffer or the caller's pieces. */
static void prepare_chunk(struct packer *k, struct prepared *c, uint16_t type, uint16_t vcpu,
                          const struct piece *p, int np, uint64_t count)
{
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        total += p[i].len;
        c->p[i] = p[i];
    }
    c->np = np;
    c->h = (struct memtap_chunk_header){
        .magic = MEMTAP_CHUNK_MAGIC, .type = type, .vcpu = vcpu, .codec = MEMTAP_CODEC_RAW,
        .raw_len = total, .count = count, .stored_len = total,
    };
    if (mt_cfg.zstd_level != 0 && total > 0) {
        size_t z = compress_pieces(k, p, np, total);
        if (z) {
            c->p[0] = (struct piece){k->out, z};
            c->np = 1;
            c->h.codec = MEMTAP_CODEC_ZSTD;
            c->h.stored_len = z;
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < c->np; i++) {
        crc = crc32(crc, c->p[i].data, (uInt)c->p[i].len);
    }
    c->h.crc32 = (uint32_t)crc;
}

/* Appends a prepared chunk; call with write_lock held. */
static void emit_chunk(struct prepared *c)
{
    if (write_errno) {
        return;
    }
    c->h.seq = chunk_seq;
    if (write_all(&c->h, sizeof(c->h)) != 0) {
        fail(errno);
        return;
    }
    for (int i = 0; i < c->np; i++) {
        if (write_all(c->p[i].data, c->p[i].len) != 0) {
            fail(errno);
            return;
        }
    }
    good_end += (off_t)(sizeof(c->h) + c->h.stored_len);
    chunk_seq++;
}

/* Small chunks (JSON, instruction tables) are prepared and written in one go; call with write_lock held. */
static void write_chunk(uint16_t type, const void *data, size_t len, uint64_t count)
{
    if (write_errno || mt_cfg.sink != MT_SINK_FILE) {
        return;
    }
    struct piece p = {data, len};
    struct prepared c;
    prepare_chunk(&small_packer, &c, type, 0, &p, 1, count);
    emit_chunk(&c);
}

static void write_json_chunk(uint16_t type, const char *json)
{
    write_chunk(type, json, strlen(json), 0);
}

static void write_pending_insns(void)
{
    uint32_t np, n;
    struct memtap_insn_paddr *paddrs = mt_insns_take_paddrs(&np);   /* first: see insns.c */
    struct memtap_insn *insns = mt_insns_take(&n);
    if (insns) {
        write_chunk(MEMTAP_CHUNK_INSNS, insns, n * sizeof(*insns), n);
        free(insns);
    }
    if (paddrs) {
        write_chunk(MEMTAP_CHUNK_INSN_PADDRS, paddrs, np * sizeof(*paddrs), np);
        free(paddrs);
    }
}

void mt_sink_process(struct mt_buffer *b)
{
    struct prepared c;
    bool file = mt_cfg.sink == MT_SINK_FILE && b->n;
    if (file) {
        struct piece cols[] = {
            {b->kind, b->n}, {b->flags, b->n}, {b->count, 2 * b->n}, {b->insn, 4 * b->n},
            {b->icount, 2 * b->n}, {b->pos, 2 * b->n}, {b->vaddr, 8 * b->m}, {b->paddr, 8 * b->m},
            {b->icount_wide, 8 * b->wi}, {b->pos_wide, 8 * b->wp},
            {b->value, 8 * b->m}, {b->value_hi, 8 * b->wv},   /* only with values */
        };
        int ncols = (int)(sizeof(cols) / sizeof(cols[0])) - (mt_cfg.values ? 0 : 2);
        prepare_chunk(&packer, &c, MEMTAP_CHUNK_EVENTS, (uint16_t)b->vcpu, cols, ncols, b->n);
    }
    pthread_mutex_lock(&write_lock);
    while (b->ticket != next_ticket) {
        pthread_cond_wait(&turn, &write_lock);
    }
    if (file) {
        write_pending_insns();   /* every instruction these events name was defined before they were submitted */
        emit_chunk(&c);
    }
    if (mt_ring_enabled) {
        mt_ring_process(b);      /* in ticket order too: the ring carries the file's records in the file's order */
    }
    events_written += b->n;
    next_ticket++;
    pthread_cond_broadcast(&turn);
    pthread_mutex_unlock(&write_lock);
    mt_buffer_release(b);
}

static void *sink_main(void *arg)
{
    (void)arg;
    struct mt_buffer *b;
    while ((b = mt_buffer_next_full())) {
        mt_sink_process(b);
    }
    return NULL;
}

/* A file that memtap record did not create gets a minimal header of its own. */
static int write_header_if_empty(void)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return -1;
    }
    if (st.st_size > 0) {
        good_end = st.st_size;
        return 0;
    }
    static const char meta[] = "{}";
    struct memtap_file_header h = {.version = MEMTAP_FORMAT_VERSION, .meta_len = sizeof(meta) - 1};
    memcpy(h.magic, MEMTAP_FILE_MAGIC, sizeof(h.magic));
    if (write_all(&h, sizeof(h)) != 0 || write_all(meta, sizeof(meta) - 1) != 0) {
        return -1;
    }
    good_end = (off_t)(sizeof(h) + sizeof(meta) - 1);
    return 0;
}

int mt_sink_open(const char *info_json)
{
    if (mt_cfg.sink == MT_SINK_FILE) {
        /* A file-size limit must end the trace, not the emulator: turn SIGXFSZ into a write error (EFBIG). */
        signal(SIGXFSZ, SIG_IGN);
        /* memtap record writes the header and metadata, then asks to append; used alone, start afresh. */
        int mode = mt_cfg.append ? O_APPEND : O_TRUNC;
        fd = open(mt_cfg.out, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0644);
        if (fd < 0 || write_header_if_empty() != 0) {
            fprintf(stderr, "memtap: cannot write trace %s: %s\n", mt_cfg.out, strerror(errno));
            return -1;
        }
        pthread_mutex_lock(&write_lock);
        write_json_chunk(MEMTAP_CHUNK_INFO, info_json);
        pthread_mutex_unlock(&write_lock);
        if (write_errno) {
            return -1;
        }
    }
    if (pthread_create(&thread, NULL, sink_main, NULL) != 0) {
        return -1;
    }
    started = true;
    return 0;
}

uint64_t mt_sink_events_written(void)
{
    return events_written;
}

/* Drains every queued buffer, then writes the END chunk (only if nothing failed) and closes the file.
 * end_json runs after the drain, so its totals are final. */
void mt_sink_close(char *(*end_json)(void))
{
    if (!started) {
        return;
    }
    mt_buffers_close();
    pthread_join(thread, NULL);
    started = false;
    pthread_mutex_lock(&write_lock);
    while (next_ticket != mt_buffers_submitted()) {   /* a vCPU thread may still be writing one it took */
        pthread_cond_wait(&turn, &write_lock);
    }
    if (mt_ring_enabled) {
        mt_ring_finish();        /* before end_json, which reports the ring's drops */
    }
    if (mt_cfg.sink == MT_SINK_FILE) {
        write_pending_insns();
        char *json = end_json();
        if (json) {
            write_json_chunk(MEMTAP_CHUNK_END, json);
            free(json);
        }
        close(fd);
        fd = -1;
    }
    pthread_mutex_unlock(&write_lock);
}

/* Counts mode: one COUNTS chunk, after the instruction definitions its rows name. */
void mt_sink_write_counts(const struct memtap_count *rows, size_t n)
{
    pthread_mutex_lock(&write_lock);
    if (fd >= 0) {
        write_pending_insns();
        if (n) {
            write_chunk(MEMTAP_CHUNK_COUNTS, rows, n * sizeof(*rows), n);
        }
    }
    pthread_mutex_unlock(&write_lock);
}

int mt_sink_error(void)
{
    return write_errno;
}
