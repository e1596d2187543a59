/* The sink thread: takes full event buffers and writes them as checksummed, compressed chunks (file sink) or
 * drops them (null sink, for measuring the tracing cost alone). Each chunk is written whole with one write()
 * sequence, so a file whose QEMU was killed is readable up to its last chunk. On a write error (disk full,
 * file too large) the file is cut back to its last whole chunk, the error is reported once, and the vCPUs are
 * never blocked by a dead sink. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

static void write_chunk(uint16_t type, uint16_t vcpu, const void *data, size_t len, uint64_t count)
{
    if (write_errno || mt_cfg.sink != MT_SINK_FILE) {
        return;
    }
    struct memtap_chunk_header h = {
        .magic = MEMTAP_CHUNK_MAGIC, .type = type, .vcpu = vcpu, .codec = MEMTAP_CODEC_RAW,
        .raw_len = len, .count = count, .seq = chunk_seq,
    };
    const void *payload = data;
    size_t stored = len;
    if (mt_cfg.zstd_level != 0 && len > 0) {
        size_t bound = ZSTD_compressBound(len);
        if (bound > zbuf_cap) {
            free(zbuf);
            zbuf = malloc(bound);
            zbuf_cap = zbuf ? bound : 0;
        }
        if (zbuf) {
            size_t z = ZSTD_compressCCtx(cctx, zbuf, zbuf_cap, data, len, mt_cfg.zstd_level);
            if (!ZSTD_isError(z)) {
                payload = zbuf;
                stored = z;
                h.codec = MEMTAP_CODEC_ZSTD;
            }
        }
    }
    h.stored_len = stored;
    h.crc32 = (uint32_t)crc32(0L, payload, (uInt)stored);
    if (write_all(&h, sizeof(h)) != 0 || write_all(payload, stored) != 0) {
        fail(errno);
        return;
    }
    good_end += (off_t)(sizeof(h) + stored);
    chunk_seq++;
}

static void write_json_chunk(uint16_t type, const char *json)
{
    write_chunk(type, 0, json, strlen(json), 0);
}

static void write_pending_insns(void)
{
    uint32_t n, total;
    struct memtap_insn *insns = mt_insns_take(&n, &total);
    if (insns) {
        write_chunk(MEMTAP_CHUNK_INSNS, 0, insns, n * sizeof(*insns), n);
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
            write_chunk(MEMTAP_CHUNK_EVENTS, (uint16_t)b->vcpu, b->ev, b->n * sizeof(struct memtap_event), b->n);
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
        fd = open(mt_cfg.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
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
