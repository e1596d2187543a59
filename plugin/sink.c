/* The sink thread: takes full event buffers and writes them as checksummed, compressed chunks (file sink) or
 * drops them (null sink, for measuring the tracing cost alone). Each chunk is written whole with one write()
 * sequence, so a file whose QEMU was killed is readable up to its last chunk. On a write error (disk full,
 * file too large) the file is cut back to its last whole chunk, the error is reported once, and the vCPUs are
 * never blocked by a dead sink. */
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
static ZSTD_CCtx *cctx;
static void *zbuf;
static size_t zbuf_cap;
static uint64_t events_written;

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

static size_t compress_pieces(const struct piece *p, int np, size_t total)
{
    size_t bound = ZSTD_compressBound(total);
    if (bound > zbuf_cap) {
        free(zbuf);
        zbuf = malloc(bound);
        zbuf_cap = zbuf ? bound : 0;
        if (!zbuf) {
            return 0;
        }
    }
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, mt_cfg.zstd_level);
    ZSTD_CCtx_setPledgedSrcSize(cctx, total);
    ZSTD_outBuffer out = {zbuf, zbuf_cap, 0};
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

static void write_chunk(uint16_t type, uint16_t vcpu, const struct piece *p, int np, uint64_t count)
{
    if (write_errno || mt_cfg.sink != MT_SINK_FILE) {
        return;
    }
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        total += p[i].len;
    }
    struct memtap_chunk_header h = {
        .magic = MEMTAP_CHUNK_MAGIC, .type = type, .vcpu = vcpu, .codec = MEMTAP_CODEC_RAW,
        .raw_len = total, .count = count, .seq = chunk_seq, .stored_len = total,
    };
    struct piece packed;
    if (mt_cfg.zstd_level != 0 && total > 0) {
        size_t z = compress_pieces(p, np, total);
        if (z) {
            packed = (struct piece){zbuf, z};
            p = &packed;
            np = 1;
            h.codec = MEMTAP_CODEC_ZSTD;
            h.stored_len = z;
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < np; i++) {
        crc = crc32(crc, p[i].data, (uInt)p[i].len);
    }
    h.crc32 = (uint32_t)crc;
    if (write_all(&h, sizeof(h)) != 0) {
        fail(errno);
        return;
    }
    for (int i = 0; i < np; i++) {
        if (write_all(p[i].data, p[i].len) != 0) {
            fail(errno);
            return;
        }
    }
    good_end += (off_t)(sizeof(h) + h.stored_len);
    chunk_seq++;
}

static void write_json_chunk(uint16_t type, const char *json)
{
    struct piece p = {json, strlen(json)};
    write_chunk(type, 0, &p, 1, 0);
}

static void write_pending_insns(void)
{
    uint32_t n, total;
    struct memtap_insn *insns = mt_insns_take(&n, &total);
    if (insns) {
        struct piece p = {insns, n * sizeof(*insns)};
        write_chunk(MEMTAP_CHUNK_INSNS, 0, &p, 1, n);
        free(insns);
    }
}

static void *sink_main(void *arg)
{
    (void)arg;
    struct mt_buffer *b;
    while ((b = mt_buffer_next_full())) {
        if (b->n) {
            write_pending_insns();
            struct piece cols[] = {
                {b->kind, b->n}, {b->flags, b->n}, {b->count, 2 * b->n}, {b->insn, 4 * b->n},
                {b->icount, 8 * b->n}, {b->pos, 8 * b->n}, {b->vaddr, 8 * b->m}, {b->paddr, 8 * b->m},
            };
            write_chunk(MEMTAP_CHUNK_EVENTS, (uint16_t)b->vcpu, cols, 8, b->n);
            events_written += b->n;
        }
        mt_buffer_release(b);
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
        cctx = ZSTD_createCCtx();
        if (!cctx) {
            return -1;
        }
        write_json_chunk(MEMTAP_CHUNK_INFO, info_json);
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
    if (mt_cfg.sink == MT_SINK_FILE) {
        write_pending_insns();
        char *json = end_json();
        if (json) {
            write_json_chunk(MEMTAP_CHUNK_END, json);
            free(json);
        }
        close(fd);
        fd = -1;
        ZSTD_freeCCtx(cctx);
        free(zbuf);
    }
}

int mt_sink_error(void)
{
    return write_errno;
}
