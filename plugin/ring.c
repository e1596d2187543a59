/* The live ring: a second consumer of full event buffers beside the file sink. It expands each buffer's events
 * into self-contained records (struct memtap_record) in a POSIX shared-memory ring that co-simulators read while
 * the guest runs, and serves the control channel in the same segment. Layout and protocol: trace.h, docs/ring.md.
 *
 * mt_ring_process runs in ticket order (from sink.c, under its write lock), so the ring carries the file's
 * records in the file's order. Everything read back from shared memory is treated as untrusted: buffer indices
 * come from the plugin's own counters, a consumer's read_seq is only accepted within what was published, and
 * every wait is bounded by the liveness checks (a consumer whose process is gone or whose heartbeat stopped is
 * detached). */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memtap_plugin.h"

_Static_assert(MT_TRACE_FETCH == MEMTAP_RING_ON_FETCH && MT_TRACE_LOAD == MEMTAP_RING_ON_LOAD &&
               MT_TRACE_STORE == MEMTAP_RING_ON_STORE, "trace_on bits are published as they are");

#define MS 1000000ull
#define LIVENESS_EVERY (50 * MS)
#define IDLE_PUBLISH (50 * MS)     /* a partly filled buffer is published after this long without a publish */
#define STALE_SLOT (2000 * MS)     /* a slot left CLAIMING, DETACHED or garbled this long is freed */
#define WAIT_LIMIT_S 60            /* ring_wait: at most this long for consumers before the guest runs */

MT_LOCAL bool mt_ring_enabled;

/* Options (plugin arguments ring_*). */
static char name[256];
static uint32_t nbuffers = 8, buffer_records = 1u << 16, heartbeat_ms = 600;
static bool lossy, stop_on_death, fetch_runs = true;
static unsigned wait_consumers;

/* The segment. */
static struct memtap_ring_header *hdr;
static struct memtap_ring_consumer *slots;
static struct memtap_ring_buffer *descs;
static struct memtap_record *recs;

/* The plugin's own view of each slot: only values it validated. */
struct consumer {
    bool attached;
    uint32_t pid, generation, heartbeat;
    uint64_t read_seq, heard_ns;
    uint32_t odd_state;            /* a state other than FREE/ATTACHING seen while not attached ... */
    uint64_t odd_since;            /* ... since then */
};
static struct consumer cons[MEMTAP_RING_MAX_CONSUMERS];
static unsigned attached;
static uint32_t generations;

/* The buffer being filled; only under `lock`. */
enum fill_mode { FILL_NONE, FILL_WRITE, FILL_DROP, FILL_SKIP };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum fill_mode mode;
static uint32_t fill;              /* ring records in the buffer being filled */
static uint64_t fill_accesses;     /* ... and the records they stand for (a fetch run: its fetches) */
static uint64_t first_record, drop_mask;
static struct memtap_record *filling;   /* FILL_WRITE: the buffer being filled */
static struct memtap_record scratch;     /* where dropped and unread records go */
static uint64_t write_seq, records_total, records_published, records_dropped, buffers_dropped;
static uint64_t last_publish_ns, last_liveness_ns;

static pthread_t thread;
static _Atomic bool stopping;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void futex_wait(uint32_t *word, uint32_t seen, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull)};
    syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

/* --- options ------------------------------------------------------------------------------------------------ */

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || !*v || x < lo || x > hi) {
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

static bool valid_name(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof(name) - 1 || v[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

int mt_ring_arg(const char *key, size_t klen, const char *v)
{
    uint32_t x = 0;
#define KEY(k) (klen == strlen(k) && !strncmp(key, k, klen))
    if (KEY("ring")) {
        if (!valid_name(v)) {
            return -1;
        }
        snprintf(name, sizeof(name), "%s", v);
        mt_ring_enabled = true;
        return 0;
    }
    if (KEY("ring_buffers")) {
        return parse_u32(v, 2, 1u << 16, &nbuffers);
    }
    if (KEY("ring_records")) {
        return parse_u32(v, 1, 1u << 24, &buffer_records);
    }
    if (KEY("ring_heartbeat_ms")) {
        return parse_u32(v, 10, 3600000, &heartbeat_ms);
    }
    if (KEY("ring_wait")) {
        int r = parse_u32(v, 0, MEMTAP_RING_MAX_CONSUMERS, &x);
        wait_consumers = x;
        return r;
    }
    if (KEY("ring_lossy")) {
        lossy = !strcmp(v, "on");
        return lossy || !strcmp(v, "off") ? 0 : -1;
    }
    if (KEY("ring_fetches")) {
        fetch_runs = !strcmp(v, "runs");
        return fetch_runs || !strcmp(v, "records") ? 0 : -1;
    }
    if (KEY("ring_on_death")) {
        stop_on_death = !strcmp(v, "stop");
        return stop_on_death || !strcmp(v, "continue") ? 0 : -1;
    }
#undef KEY
    return 1;
}

/* --- consumers ---------------------------------------------------------------------------------------------- */

static const char *reason_text(uint32_t reason)
{
    switch (reason) {
    case MEMTAP_RING_DETACH_GONE:
        return "its process is gone";
    case MEMTAP_RING_DETACH_SILENT:
        return "its heartbeat stopped";
    default:
        return "its slot holds values no client writes";
    }
}

static void detach(unsigned i, uint32_t reason)
{
    struct consumer *c = &cons[i];
    c->attached = false;
    attached--;
    STORE(slots[i].detach_reason, reason);
    STORE(slots[i].state, (uint32_t)MEMTAP_RING_SLOT_DETACHED);
    c->odd_state = MEMTAP_RING_SLOT_DETACHED;
    c->odd_since = now_ns();
    fprintf(stderr, "memtap: ring %s: consumer %u (pid %u) detached: %s; %s\n", name, i, c->pid,
            reason_text(reason), stop_on_death ? "tracing stopped (--ring-on-death stop)" : "recording goes on");
    if (stop_on_death) {
        mt_control_command(MEMTAP_RING_CMD_STOP, 0);
    }
}

static void admit(unsigned i, uint64_t now)
{
    struct memtap_ring_consumer *s = &slots[i];
    uint32_t pid = LOAD(s->pid);
    if (pid == 0 || pid > (1u << 22)) {   /* beyond Linux's PID_MAX_LIMIT */
        STORE(s->detach_reason, (uint32_t)MEMTAP_RING_DETACH_MALFORMED);
        STORE(s->state, (uint32_t)MEMTAP_RING_SLOT_DETACHED);
        return;
    }
    cons[i] = (struct consumer){.attached = true, .pid = pid, .generation = ++generations,
                                .heartbeat = LOAD(s->heartbeat), .read_seq = write_seq, .heard_ns = now};
    attached++;
    STORE(s->read_seq, write_seq);
    STORE(s->joined_seq, write_seq);
    STORE(s->joined_record, records_total);
    STORE(s->lost, (uint64_t)0);
    STORE(s->detach_reason, (uint32_t)0);
    STORE(s->generation, cons[i].generation);
    STORE(s->state, (uint32_t)MEMTAP_RING_SLOT_ATTACHED);
}

/* A slot that is not attached: admit ATTACHING ones, free what was left behind. */
static void tend_free_slot(unsigned i, uint64_t now)
{
    struct consumer *c = &cons[i];
    uint32_t st = LOAD(slots[i].state);
    if (st == MEMTAP_RING_SLOT_FREE) {
        c->odd_state = 0;
        return;
    }
    if (st == MEMTAP_RING_SLOT_ATTACHING) {
        admit(i, now);
        return;
    }
    if (st == MEMTAP_RING_SLOT_LEAVING) {
        STORE(slots[i].state, (uint32_t)MEMTAP_RING_SLOT_FREE);
        return;
    }
    if (c->odd_state != st) {
        c->odd_state = st;
        c->odd_since = now;
    } else if (now - c->odd_since > STALE_SLOT) {
        STORE(slots[i].state, (uint32_t)MEMTAP_RING_SLOT_FREE);
        c->odd_state = 0;
    }
}

/* An attached slot: take its read position if it is plausible, and check that its owner is alive. */
static void tend_attached_slot(unsigned i, uint64_t now, bool liveness)
{
    struct consumer *c = &cons[i];
    struct memtap_ring_consumer *s = &slots[i];
    uint32_t st = LOAD(s->state);
    if (st == MEMTAP_RING_SLOT_LEAVING) {
        c->attached = false;
        attached--;
        STORE(s->state, (uint32_t)MEMTAP_RING_SLOT_FREE);
        return;
    }
    uint64_t rs = LOAD(s->read_seq);
    if (st != MEMTAP_RING_SLOT_ATTACHED || LOAD(s->pid) != c->pid || LOAD(s->generation) != c->generation ||
        rs < c->read_seq || rs > write_seq) {
        detach(i, MEMTAP_RING_DETACH_MALFORMED);
        return;
    }
    c->read_seq = rs;
    uint32_t hb = LOAD(s->heartbeat);
    if (hb != c->heartbeat) {
        c->heartbeat = hb;
        c->heard_ns = now;
    }
    if (liveness) {
        if (kill((pid_t)c->pid, 0) != 0 && errno == ESRCH) {
            detach(i, MEMTAP_RING_DETACH_GONE);
        } else if (now - c->heard_ns > heartbeat_ms * MS) {
            detach(i, MEMTAP_RING_DETACH_SILENT);
        }
    }
}

/* Brings every slot up to date; call with `lock` held. */
static void service(uint64_t now)
{
    bool liveness = now - last_liveness_ns >= LIVENESS_EVERY;
    if (liveness) {
        last_liveness_ns = now;
    }
    for (unsigned i = 0; i < MEMTAP_RING_MAX_CONSUMERS; i++) {
        if (cons[i].attached) {
            tend_attached_slot(i, now, liveness);
        } else {
            tend_free_slot(i, now);
        }
    }
    STORE(hdr->consumers, attached);
}

/* The oldest buffer some attached consumer still holds (write_seq if none). */
static uint64_t oldest_held(void)
{
    uint64_t oldest = write_seq;
    for (unsigned i = 0; i < MEMTAP_RING_MAX_CONSUMERS; i++) {
        if (cons[i].attached && cons[i].read_seq < oldest) {
            oldest = cons[i].read_seq;
        }
    }
    return oldest;
}

/* --- producing ---------------------------------------------------------------------------------------------- */

static void publish_counters(void)
{
    STORE(hdr->records_total, records_total);
    STORE(hdr->records_published, records_published);
    STORE(hdr->records_dropped, records_dropped);
    STORE(hdr->buffers_dropped, buffers_dropped);
}

/* Ends the buffer being filled: publishes it, or counts it as dropped. */
static void finish_buffer(void)
{
    if (mode == FILL_WRITE) {
        struct memtap_ring_buffer *d = &descs[write_seq % nbuffers];
        d->seq = write_seq;
        d->first_record = first_record;
        d->dropped_before = records_dropped;
        d->count = fill;
        records_published += fill_accesses;
        publish_counters();
        STORE(hdr->write_seq, ++write_seq);
        __atomic_add_fetch(&hdr->publish_futex, 1, __ATOMIC_RELEASE);
        futex_wake(&hdr->publish_futex);
    } else if (mode == FILL_DROP) {
        records_dropped += fill_accesses;
        buffers_dropped++;
        for (unsigned i = 0; i < MEMTAP_RING_MAX_CONSUMERS; i++) {
            if (cons[i].attached && (drop_mask >> i & 1)) {
                STORE(slots[i].lost, LOAD(slots[i].lost) + fill_accesses);
            }
        }
        publish_counters();
    }
    last_publish_ns = now_ns();
    mode = FILL_NONE;
    fill = 0;
    fill_accesses = 0;
}

/* Chooses what happens to the next buffer's records; in lossless mode waits (bounded by the liveness checks)
 * until every attached consumer has released the buffer it will overwrite. */
static void start_buffer(void)
{
    first_record = records_total;
    fill = 0;
    fill_accesses = 0;
    for (bool waiting = false;; waiting = true) {
        uint32_t seen = LOAD(hdr->release_futex);
        service(now_ns());
        if (!attached) {
            mode = FILL_SKIP;
            break;
        }
        if (write_seq - oldest_held() < nbuffers) {
            mode = FILL_WRITE;
            break;
        }
        if (lossy) {
            mode = FILL_DROP;
            drop_mask = 0;
            for (unsigned i = 0; i < MEMTAP_RING_MAX_CONSUMERS; i++) {
                drop_mask |= (uint64_t)cons[i].attached << i;
            }
            break;
        }
        if (!waiting) {
            STORE(hdr->producer_waiting, 1u);
        }
        futex_wait(&hdr->release_futex, seen, 10 * MS);
    }
    STORE(hdr->producer_waiting, 0u);
    filling = &recs[(size_t)(write_seq % nbuffers) * buffer_records];
}

static inline struct memtap_record *next_record(void)
{
    if (mode == FILL_NONE) {
        start_buffer();
    }
    return mode == FILL_WRITE ? filling + fill : &scratch;
}

/* Stream indexes, drop and loss counts are in records as the file has them: a fetch run counts its fetches. */
static inline void commit_record(uint32_t accesses)
{
    records_total += accesses;
    fill_accesses += accesses;
    if (++fill == buffer_records) {
        finish_buffer();
    }
}

/* The expansion below mirrors the reader's (reader.py, Trace._expand; docs/format.md), field for field. */
static void put_fetches(uint16_t vcpu, uint32_t insn, uint16_t count, uint64_t icount, uint64_t pos)
{
    for (uint32_t k = 0; k < count; k++) {
        const struct memtap_insn *in = mt_insn_at(insn + k);
        uint64_t paddr = 0;
        bool phys = mt_insn_fetch_paddr(in, &paddr);
        struct memtap_record *r = next_record();
        *r = (struct memtap_record){.pos = pos + k, .icount = icount + k, .vaddr = in->vaddr, .pc = in->vaddr,
                                    .paddr = paddr, .vcpu = vcpu, .kind = MEMTAP_KIND_FETCH,
                                    .size = in->size, .priv = in->priv, .flags = phys ? MEMTAP_RF_PADDR : 0};
        commit_record(1);
    }
}

/* Keeps the first n (< MEMTAP_RUN_MAX) of a run's 4-bit instruction sizes (value, value_hi: trace.h). */
static inline void keep_sizes(uint64_t *lo, uint64_t *hi, uint32_t n)
{
    if (n < 16) {
        *lo &= (1ull << (4 * n)) - 1;
        *hi = 0;
    } else {
        *hi &= (1ull << (4 * (n - 16))) - 1;
    }
}

/* Fetches as MEMTAP_KIND_FETCH_RUN records (ring_fetches=runs): a fraction of the shared-memory traffic. A run
 * is cut where its event's fetches end; an instruction no run can describe goes alone, as a plain fetch. */
static void put_fetch_runs(uint16_t vcpu, uint32_t insn, uint16_t count, uint64_t icount, uint64_t pos)
{
    for (uint32_t k = 0; k < count;) {
        const struct memtap_record *run = mt_fetch_record_at(insn + k);
        struct memtap_record *r = next_record();
        *r = *run;
        r->pos = pos + k;
        r->icount = icount + k;
        r->vcpu = vcpu;
        uint32_t n = 1;
        if (run->kind == MEMTAP_KIND_FETCH_RUN) {
            n = run->size < count - k ? run->size : count - k;
            if (n < run->size) {   /* the event ends inside the run: keep its first n sizes */
                r->size = (uint8_t)n;
                keep_sizes(&r->value, &r->value_hi, n);
            }
        }
        commit_record(n);
        k += n;
    }
}

/* A DATA, MARK, CMO or EXCEPTION event's one record. */
struct access {
    unsigned kind, flags;   /* not bytes: stored apart and read back as one word, they stalled store forwarding */
    uint32_t insn;
    uint64_t icount, pos, vaddr, paddr, value, value_hi;
};

static inline __attribute__((always_inline)) void fill_data(struct memtap_record *r, const struct access *a,
                                                             const struct memtap_insn *in)
{
    bool has_paddr = a->flags & MEMTAP_EVF_PADDR;
    r->kind = a->flags & MEMTAP_EVF_STORE ? MEMTAP_KIND_STORE : MEMTAP_KIND_LOAD;
    r->vaddr = a->vaddr;
    r->paddr = has_paddr ? a->paddr : 0;
    r->value = a->value;
    r->value_hi = a->value_hi;
    r->size = (uint8_t)(1u << (a->flags & MEMTAP_EVF_SIZE_MASK));
    r->flags = (uint8_t)(((a->flags & (MEMTAP_EVF_IO | MEMTAP_EVF_SIGNED | MEMTAP_EVF_BIG_ENDIAN)) >> 4) |
                         (has_paddr ? MEMTAP_RF_PADDR : 0) | (in->flags & MEMTAP_INSN_ATOMIC ? MEMTAP_RF_ATOMIC : 0) |
                         (in->flags & MEMTAP_INSN_EXCLUSIVE ? MEMTAP_RF_EXCLUSIVE : 0) |
                         (mt_cfg.values ? MEMTAP_RF_VALUE : 0));
}

static void fill_cmo(struct memtap_record *r, const struct access *a, const struct memtap_insn *in)
{
    bool addressed = a->flags & MEMTAP_EVF_CMO_ADDR;
    uint64_t cmo = in->cmo, level = (a->flags & MEMTAP_EVF_CMO_LEVEL) >> 1;   /* a set/way register's level */
    if (level) {
        cmo = (cmo & 0x3f) | level << 6;
    }
    r->kind = MEMTAP_KIND_CMO;
    r->vaddr = addressed ? a->vaddr : 0;
    r->value = cmo;
    r->flags = addressed || MEMTAP_CMO_GRANULARITY(cmo) == MEMTAP_CMO_WHOLE ? 0 : MEMTAP_RF_NOADDR;
}

/* Makes a load or store record a run load/store that also carries the first `fetches` fetches of `run`, which end
 * with its instruction (MEMTAP_KIND_RUN_LOAD/STORE, trace.h): half the shared-memory traffic of a run record and an
 * access record. */
static inline void carry_fetches(struct memtap_record *r, const struct access *a, const struct memtap_record *run,
                                 uint32_t fetches)
{
    uint64_t sizes = run->value, beyond = run->value_hi;
    keep_sizes(&sizes, &beyond, fetches);   /* fetches <= MEMTAP_FUSED_MAX: all in value */
    bool fetch_paddr = run->flags & MEMTAP_RF_PADDR;
    r->kind = a->flags & MEMTAP_EVF_STORE ? MEMTAP_KIND_RUN_STORE : MEMTAP_KIND_RUN_LOAD;
    r->fetches = (uint16_t)fetches;
    r->value = sizes;
    r->value_hi = fetch_paddr ? run->paddr : 0;
    r->flags |= fetch_paddr ? MEMTAP_RF_RUN_PADDR : 0;
}

/* An event's record; a DATA event's with `run` (fusable_run) carries its `fetches` fetches too. */
static void put_access(uint16_t vcpu, const struct access *a, const struct memtap_record *run, uint32_t fetches)
{
    const struct memtap_insn *in = mt_insn_at(a->insn);
    struct memtap_record *r = next_record();
    *r = (struct memtap_record){.pos = a->pos, .icount = a->icount, .pc = in->vaddr, .vcpu = vcpu, .priv = in->priv};
    if (a->kind == MEMTAP_EV_MARK) {
        r->kind = MEMTAP_KIND_MARKER;
        r->value = a->vaddr;
    } else if (a->kind == MEMTAP_EV_CMO) {
        fill_cmo(r, a, in);
    } else if (a->kind == MEMTAP_EV_EXCEPTION) {   /* paddr carries the cause, vaddr the PC it came from */
        bool from = a->flags & MEMTAP_EVF_EXC_FROM, cause = a->flags & MEMTAP_EVF_EXC_CAUSE;
        r->kind = MEMTAP_KIND_EXCEPTION;
        r->vaddr = from ? a->vaddr : 0;
        r->value = cause ? a->paddr : 0;
        r->flags = (uint8_t)((from ? 0 : MEMTAP_RF_NOADDR) | (cause ? MEMTAP_RF_VALUE : 0) |
                             (a->flags & MEMTAP_EVF_EXC_INTERRUPT ? MEMTAP_RF_INTERRUPT : 0));
    } else {
        fill_data(r, a, in);
        if (run) {
            carry_fetches(r, a, run, fetches);
        }
    }
    commit_record(run ? fetches + 1 : 1);
}

/* The run record of the `fetches` fetches that end with instruction `insn`, if one run holds them and a run
 * load/store can carry them; otherwise NULL. */
static const struct memtap_record *fusable_run(uint32_t insn, uint32_t fetches)
{
    if (fetches == 0 || fetches > MEMTAP_FUSED_MAX) {
        return NULL;
    }
    const struct memtap_record *run = mt_fetch_record_at(insn - (fetches - 1u));
    return run->kind == MEMTAP_KIND_FETCH_RUN && run->size >= fetches ? run : NULL;
}

static uint64_t records_in(const struct mt_buffer *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        n += b->count[i];   /* 1 but for EXEC runs and DATA events with fetches */
    }
    return n;
}

/* Expands one full event buffer (columns as in an EVENTS chunk, trace.h) into records. */
void mt_ring_process(const struct mt_buffer *b)
{
    pthread_mutex_lock(&lock);
    service(now_ns());
    if (!attached && mode != FILL_WRITE && mode != FILL_DROP) {
        records_total += records_in(b);   /* nobody reads: count the records, do not expand them */
        mode = FILL_NONE;
        publish_counters();
        pthread_mutex_unlock(&lock);
        return;
    }
    uint64_t icount = 0, pos = 0;
    size_t j = 0, wi = 0, wp = 0, wv = 0;
    uint16_t vcpu = (uint16_t)b->vcpu;
    bool fuse = fetch_runs && !mt_cfg.values;   /* with values, value and value_hi are the access's */
    for (size_t i = 0; i < b->n; i++) {
        icount += b->icount[i] == MEMTAP_WIDE ? b->icount_wide[wi++] : b->icount[i];
        pos += b->pos[i] == MEMTAP_WIDE ? b->pos_wide[wp++] : b->pos[i];
        uint8_t kind = b->kind[i];
        if (kind == MEMTAP_EV_EXEC) {
            (fetch_runs ? put_fetch_runs : put_fetches)(vcpu, b->insn[i], b->count[i], icount, pos);
            icount += b->count[i] - 1u;
            pos += b->count[i] - 1u;
        } else {
            uint16_t fetches = kind == MEMTAP_EV_DATA ? b->count[i] - 1u : 0u;   /* ending with this instruction */
            const struct memtap_record *run = fuse ? fusable_run(b->insn[i], fetches) : NULL;
            if (fetches && !run) {
                (fetch_runs ? put_fetch_runs : put_fetches)(vcpu, b->insn[i] - (fetches - 1u), fetches,
                                                            icount - (fetches - 1u), pos - fetches);
            }
            bool data = mt_cfg.values && kind == MEMTAP_EV_DATA;
            bool wide = data && (b->flags[i] & MEMTAP_EVF_SIZE_MASK) == 4;   /* 16 bytes: a high half follows */
            struct access a = {.kind = kind, .flags = b->flags[i], .insn = b->insn[i], .icount = icount, .pos = pos,
                               .vaddr = b->vaddr[j], .paddr = b->paddr[j] + b->vaddr[j],
                               .value = data ? b->value[j] : 0, .value_hi = wide ? b->value_hi[wv++] : 0};
            j++;
            put_access(vcpu, &a, run, fetches);
        }
    }
    pthread_mutex_unlock(&lock);
}

/* --- the ring thread: control commands, status, and liveness while the producer is idle ------------------- */

static void refresh_status(uint64_t now, uint64_t *last_ns, uint64_t *last_total)
{
    enum { KINDS = sizeof(mt_vcpus[0].records) / sizeof(mt_vcpus[0].records[0]) };
    _Static_assert(KINDS <= sizeof(hdr->status_records) / sizeof(hdr->status_records[0]), "status_records");
    uint64_t rec[KINDS] = {0}, icount = 0, total = 0;
    for (unsigned i = 0; i < mt_max_vcpus; i++) {
        for (int k = 0; k < KINDS; k++) {
            rec[k] += __atomic_load_n(&mt_vcpus[i].records[k], __ATOMIC_RELAXED);
        }
        icount += __atomic_load_n(&mt_vcpus[i].icount, __ATOMIC_RELAXED);
    }
    for (int k = 0; k < KINDS; k++) {
        STORE(hdr->status_records[k], rec[k]);
        total += rec[k];
    }
    if (now > *last_ns) {
        STORE(hdr->status_rate, (uint64_t)((double)(total - *last_total) * 1e9 / (double)(now - *last_ns)));
    }
    STORE(hdr->status_icount, icount);
    STORE(hdr->trace_on, (uint32_t)atomic_load_explicit(&mt_trace_on, memory_order_relaxed));
    STORE(hdr->status_time_ns, now);
    *last_ns = now;
    *last_total = total;
}

static void *ring_main(void *arg)
{
    (void)arg;
    uint32_t acked = LOAD(hdr->ctl_seq);
    uint64_t status_ns = 0, status_total = 0;
    while (!atomic_load(&stopping)) {
        uint32_t seq = LOAD(hdr->ctl_seq);
        if (seq != acked) {
            uint32_t cmd = LOAD(hdr->ctl_cmd);
            uint64_t value = LOAD(hdr->ctl_arg);
            STORE(hdr->ctl_result, mt_control_command(cmd, value));
            STORE(hdr->trace_on, (uint32_t)atomic_load(&mt_trace_on));   /* status shows it once acknowledged */
            acked = seq;
            STORE(hdr->ctl_ack, seq);
            futex_wake(&hdr->ctl_ack);
        }
        uint64_t now = now_ns();
        if (now - status_ns >= 100 * MS) {
            refresh_status(now, &status_ns, &status_total);
        }
        if (pthread_mutex_trylock(&lock) == 0) {   /* busy means the producer is servicing the slots itself */
            service(now);
            if (mode == FILL_WRITE && fill && now - last_publish_ns > IDLE_PUBLISH) {
                finish_buffer();
            }
            pthread_mutex_unlock(&lock);
        }
        futex_wait(&hdr->ctl_seq, seq, 10 * MS);
    }
    return NULL;
}

/* --- opening and closing ------------------------------------------------------------------------------------ */

static size_t align_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

static int create_segment(void)
{
    char path[sizeof(name) + 1];
    snprintf(path, sizeof(path), "/%s", name);
    size_t desc_off = sizeof(struct memtap_ring_header) + MEMTAP_RING_MAX_CONSUMERS * sizeof(struct memtap_ring_consumer);
    size_t rec_off = align_up(desc_off + nbuffers * sizeof(struct memtap_ring_buffer), 4096);
    unsigned __int128 size = (unsigned __int128)nbuffers * buffer_records * sizeof(struct memtap_record) + rec_off;
    if (size > (unsigned __int128)1 << 40) {
        fprintf(stderr, "memtap: ring %s: %u buffers of %u records do not fit in memory\n", name, nbuffers,
                buffer_records);
        return -1;
    }
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "memtap: cannot create ring %s: %s\n", name,
                errno == EEXIST ? "a shared-memory object of that name exists" : strerror(errno));
        return -1;
    }
    void *base = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)size) == 0) {
        base = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    int err = errno;
    close(fd);
    if (base == MAP_FAILED) {
        shm_unlink(path);
        fprintf(stderr, "memtap: cannot create ring %s (%llu bytes): %s\n", name, (unsigned long long)size,
                strerror(err));
        return -1;
    }
    hdr = base;
    slots = (struct memtap_ring_consumer *)((char *)base + sizeof(*hdr));
    descs = (struct memtap_ring_buffer *)((char *)base + desc_off);
    recs = (struct memtap_record *)((char *)base + rec_off);
    *hdr = (struct memtap_ring_header){
        .version = MEMTAP_RING_VERSION, .header_size = sizeof(*hdr), .record_size = sizeof(struct memtap_record),
        .nbuffers = nbuffers, .buffer_records = buffer_records, .max_consumers = MEMTAP_RING_MAX_CONSUMERS,
        .consumers_offset = sizeof(*hdr), .buffers_offset = desc_off, .records_offset = rec_off,
        .segment_size = (uint64_t)size, .flags = (lossy ? MEMTAP_RING_F_LOSSY : 0) |
        (mt_cfg.sink == MT_SINK_FILE ? MEMTAP_RING_F_FILE : 0) | (fetch_runs ? MEMTAP_RING_F_FETCH_RUNS : 0), .producer_pid = (uint32_t)getpid(),
        .heartbeat_ms = heartbeat_ms, .state = MEMTAP_RING_RUNNING, .start_time_ns = now_ns(),
        .trace_on = atomic_load(&mt_trace_on),
    };
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(hdr->magic, MEMTAP_RING_MAGIC, sizeof(hdr->magic));
    return 0;
}

/* Holds the guest until ring_wait consumers have attached (at most WAIT_LIMIT_S seconds). */
static void wait_for_consumers(void)
{
    fprintf(stderr, "memtap: ring %s: waiting for %u consumer%s before the guest runs\n", name, wait_consumers,
            wait_consumers == 1 ? "" : "s");
    uint64_t deadline = now_ns() + WAIT_LIMIT_S * 1000 * MS;
    for (;;) {
        pthread_mutex_lock(&lock);
        service(now_ns());
        /* Consumers admitted so far, detached ones included: one that attached and died will not come back. */
        unsigned n = (unsigned)generations;
        pthread_mutex_unlock(&lock);
        if (n >= wait_consumers) {
            return;
        }
        if (now_ns() > deadline) {
            fprintf(stderr, "memtap: ring %s: only %u of %u consumers attached after %d s; running anyway\n", name,
                    n, wait_consumers, WAIT_LIMIT_S);
            return;
        }
        struct timespec ts = {0, 5 * (long)MS};
        nanosleep(&ts, NULL);
    }
}

int mt_ring_open(void)
{
    if (create_segment() != 0) {
        return -1;
    }
    mt_insns_keep();
    last_publish_ns = now_ns();
    if (pthread_create(&thread, NULL, ring_main, NULL) != 0) {
        return -1;
    }
    if (wait_consumers) {
        wait_for_consumers();
    }
    return 0;
}

/* Publishes the last, partly filled buffer, marks the stream ENDED and removes the name (clients that have it
 * mapped read on). Runs after every event buffer went through mt_ring_process. */
void mt_ring_finish(void)
{
    pthread_mutex_lock(&lock);
    if (mode != FILL_NONE) {
        finish_buffer();
    }
    publish_counters();
    STORE(hdr->state, (uint32_t)MEMTAP_RING_ENDED);
    __atomic_add_fetch(&hdr->publish_futex, 1, __ATOMIC_RELEASE);
    futex_wake(&hdr->publish_futex);
    pthread_mutex_unlock(&lock);
    atomic_store(&stopping, true);
    futex_wake(&hdr->ctl_seq);
    pthread_join(thread, NULL);
    char path[sizeof(name) + 1];
    snprintf(path, sizeof(path), "/%s", name);
    shm_unlink(path);
    if (records_dropped) {
        fprintf(stderr, "memtap: ring %s: %llu records dropped in %llu buffers (lossy mode)\n", name,
                (unsigned long long)records_dropped, (unsigned long long)buffers_dropped);
    }
}

uint64_t mt_ring_dropped(void)
{
    return records_dropped;
}
