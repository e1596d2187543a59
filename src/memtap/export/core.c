/* memtap export core: formats records for other tools' trace formats, a batch of columns per call.
 * core.h describes the interface; docs/formats.md describes each format and what it loses.
 */
#include "core.h"
#include "values.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static inline char *put_str(char *o, const char *s)
{
    while (*s)
        *o++ = *s++;
    return o;
}

/* The record's address if the format can hold it, else counts why not and returns 0 with *ok = 0. */
static inline uint64_t address(const struct mx_cols *c, uint64_t i, uint64_t *drops, int *ok)
{
    *ok = 0;
    uint8_t fl = c->flags[i];
    if (c->physical && !(fl & MX_RF_PADDR)) {
        drops[MX_DROP_NO_PADDR]++;
        return 0;
    }
    uint64_t a = c->addr[i];
    if (c->addr_bits < 64 && (a >> c->addr_bits)) {
        drops[MX_DROP_WIDE_ADDR]++;
        return 0;
    }
    *ok = 1;
    return a;
}

/* Counts a marker or exception record as dropped; returns 1 if the record was one. */
static inline int drop_other(uint8_t kind, uint64_t *drops)
{
    if (kind == MX_MARKER) {
        drops[MX_DROP_MARKER]++;
        return 1;
    }
    if (kind == MX_EXCEPTION || kind > MX_EXCEPTION) {
        drops[MX_DROP_EXCEPTION]++;
        return 1;
    }
    return 0;
}

/* A cache operation seen by a memory-side format: 'R' (a read: prefetches), 'W' (a write of whole lines: zeroing,
 * addr aligned down to `line`), or 0 (nothing the format can say: counted). */
static int cmo_access(const struct mx_cols *c, uint64_t i, uint32_t line, uint64_t *addr, uint64_t *drops)
{
    uint64_t v = c->value[i];
    unsigned op = v & 15, gran = (v >> 4) & 3;
    if (gran != MX_CMO_LINE || (c->flags[i] & MX_RF_NOADDR) ||
        !(op == MX_CMO_ZERO || op == MX_CMO_PREFETCH_READ || op == MX_CMO_PREFETCH_WRITE)) {
        drops[MX_DROP_CMO]++;
        return 0;
    }
    int ok;
    uint64_t a = address(c, i, drops, &ok);
    if (!ok)
        return 0;
    if (op == MX_CMO_ZERO) {
        *addr = a & ~(uint64_t)(line - 1);
        return 'W';
    }
    *addr = a;
    return 'R';
}

/* --- Valgrind lackey ------------------------------------------------------------------------------------------ */

static char *lackey_line(char *o, char tag, uint64_t addr, uint64_t size)
{
    if (tag == 'I') {
        *o++ = 'I';
        *o++ = ' ';
    } else {
        *o++ = ' ';
        *o++ = tag;
    }
    *o++ = ' ';
    o = mx_put_hex(o, addr, 8);
    *o++ = ',';
    o = mx_put_dec(o, size);
    *o++ = '\n';
    return o;
}

EXPORT size_t mx_lackey(const struct mx_cols *c, struct mx_lackey_state *st, int final, char *out, uint64_t *drops)
{
    char *o = out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint8_t k = c->kind[i];
        if (k == MX_STORE && st->pending && c->addr[i] == st->addr && c->size[i] == st->size &&
            c->time[i] == st->time && c->pc[i] == st->pc && c->vcpu[i] == st->vcpu &&
            (!c->physical || (c->flags[i] & MX_RF_PADDR))) {
            o = lackey_line(o, 'M', st->addr, st->size);   /* its instruction's load and store of one location */
            st->pending = 0;
            continue;
        }
        if (st->pending) {
            o = lackey_line(o, 'L', st->addr, st->size);
            st->pending = 0;
        }
        if (drop_other(k, drops))
            continue;
        if (k == MX_CMO) {
            drops[MX_DROP_CMO]++;
            continue;
        }
        int ok;
        uint64_t a = address(c, i, drops, &ok);
        if (!ok)
            continue;
        if (k == MX_LOAD) {
            st->pending = 1;
            st->addr = a;
            st->size = c->size[i];
            st->time = c->time[i];
            st->pc = c->pc[i];
            st->vcpu = c->vcpu[i];
            continue;
        }
        o = lackey_line(o, k == MX_FETCH ? 'I' : 'S', a, c->size[i]);
    }
    if (final && st->pending) {
        o = lackey_line(o, 'L', st->addr, st->size);
        st->pending = 0;
    }
    return (size_t)(o - out);
}

/* --- Dinero IV extended din ----------------------------------------------------------------------------------- */

static char *din_line(char *o, char label, uint64_t addr, uint64_t size)
{
    *o++ = label;
    *o++ = ' ';
    o = mx_put_hex(o, addr, 1);
    *o++ = ' ';
    o = mx_put_hex(o, size, 1);
    *o++ = '\n';
    return o;
}

/* A cache operation as din lines: c (copy back dirty lines), v (invalidate), both for a flush; size 0 is Dinero's
 * whole cache. Zeroing is a write of the line. Anything else has no label. */
static char *din_cmo(const struct mx_cols *c, uint64_t i, uint32_t line, char *o, uint64_t *drops)
{
    uint64_t v = c->value[i];
    unsigned op = v & 15, gran = (v >> 4) & 3;
    int clean = op == MX_CMO_CLEAN || op == MX_CMO_FLUSH, inval = op == MX_CMO_INVALIDATE || op == MX_CMO_FLUSH;
    if (gran == MX_CMO_WHOLE && (clean || inval)) {
        if (clean)
            o = din_line(o, 'c', 0, 0);
        if (inval)
            o = din_line(o, 'v', 0, 0);
        return o;
    }
    if (gran != MX_CMO_LINE || (c->flags[i] & MX_RF_NOADDR) || !(clean || inval || op == MX_CMO_ZERO)) {
        drops[MX_DROP_CMO]++;
        return o;
    }
    int ok;
    uint64_t a = address(c, i, drops, &ok) & ~(uint64_t)(line - 1);
    if (!ok)
        return o;
    if (op == MX_CMO_ZERO)
        return din_line(o, 'w', a, line);
    if (clean)
        o = din_line(o, 'c', a, line);
    if (inval)
        o = din_line(o, 'v', a, line);
    return o;
}

EXPORT size_t mx_dinero(const struct mx_cols *c, uint32_t line, char *out, uint64_t *drops)
{
    static const char label[3] = {'i', 'r', 'w'};
    char *o = out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint8_t k = c->kind[i];
        if (drop_other(k, drops))
            continue;
        if (k == MX_CMO) {
            o = din_cmo(c, i, line, o, drops);
            continue;
        }
        int ok;
        uint64_t a = address(c, i, drops, &ok);
        if (ok)
            o = din_line(o, label[k], a, c->size[i]);
    }
    return (size_t)(o - out);
}

/* --- memory-side formats: DRAMsim3, Ramulator, gem5 ------------------------------------------------------------ */

/* The memory request a record makes: 'R' or 'W' with its address and size, or 0 (counted). */
static int request(const struct mx_cols *c, uint64_t i, uint32_t line, uint64_t *addr, uint32_t *size,
                   uint64_t *drops)
{
    uint8_t k = c->kind[i];
    if (drop_other(k, drops))
        return 0;
    if (k == MX_CMO) {
        *size = line;
        return cmo_access(c, i, line, addr, drops);
    }
    int ok;
    *addr = address(c, i, drops, &ok);
    *size = c->size[i];
    return ok ? (k == MX_STORE ? 'W' : 'R') : 0;
}

EXPORT size_t mx_dramsim3(const struct mx_cols *c, char *out, uint64_t *drops)
{
    char *o = out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t a;
        uint32_t size;
        int rw = request(c, i, 64, &a, &size, drops);
        if (!rw)
            continue;
        *o++ = '0';
        *o++ = 'x';
        o = mx_put_hex(o, a, 1);
        o = put_str(o, rw == 'W' ? " WRITE " : " READ ");
        o = mx_put_dec(o, c->time[i]);
        *o++ = '\n';
    }
    return (size_t)(o - out);
}

EXPORT size_t mx_ramulator(const struct mx_cols *c, char *out, uint64_t *drops)
{
    char *o = out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t a;
        uint32_t size;
        int rw = request(c, i, 64, &a, &size, drops);
        if (!rw)
            continue;
        o = put_str(o, rw == 'W' ? "ST 0x" : "LD 0x");
        o = mx_put_hex(o, a, 1);
        *o++ = '\n';
    }
    return (size_t)(o - out);
}

static inline uint8_t *put_varint(uint8_t *o, uint64_t x)
{
    while (x >= 0x80) {
        *o++ = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    *o++ = (uint8_t)x;
    return o;
}

/* gem5 Packet fields (src/proto/packet.proto), MemCmd values (src/mem/packet.hh) and Request flags. */
#define GEM5_READ_REQ 1
#define GEM5_WRITE_REQ 4
#define GEM5_INST_FETCH 0x100
#define GEM5_UNCACHEABLE 0x400

EXPORT size_t mx_gem5(const struct mx_cols *c, uint64_t ticks_per_unit, char *out, uint64_t *drops)
{
    uint8_t *o = (uint8_t *)out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t a;
        uint32_t size;
        int rw = request(c, i, 64, &a, &size, drops);
        if (!rw)
            continue;
        uint32_t flags = (c->kind[i] == MX_FETCH ? GEM5_INST_FETCH : 0) |
                         (c->flags[i] & MX_RF_IO ? GEM5_UNCACHEABLE : 0);
        uint8_t *body = o + 1, *b = body;   /* a Packet is under 128 bytes: its length is one varint byte */
        *b++ = 0x08; /* 1 tick */
        b = put_varint(b, c->time[i] * ticks_per_unit);
        *b++ = 0x10; /* 2 cmd */
        b = put_varint(b, rw == 'W' ? GEM5_WRITE_REQ : GEM5_READ_REQ);
        *b++ = 0x18; /* 3 addr */
        b = put_varint(b, a);
        *b++ = 0x20; /* 4 size */
        b = put_varint(b, size);
        if (flags) {
            *b++ = 0x28; /* 5 flags */
            b = put_varint(b, flags);
        }
        *b++ = 0x38; /* 7 pc */
        b = put_varint(b, c->pc[i]);
        *o = (uint8_t)(b - body);
        o = b;
    }
    return (size_t)(o - (uint8_t *)out);
}

/* --- records for the cache simulator ------------------------------------------------------------------------ */

EXPORT void mx_records(const struct mx_cols *c, const uint64_t *vaddr, const uint64_t *paddr, struct mx_record *out)
{
    for (uint64_t i = 0; i < c->n; i++)
        out[i] = (struct mx_record){.vaddr = vaddr[i], .paddr = paddr[i], .pc = c->pc[i], .value = c->value[i],
                                    .vcpu = c->vcpu[i], .kind = c->kind[i], .size = c->size[i],
                                    .flags = c->flags[i]};
}

/* --- instruction addresses -> what the exporters know about them --------------------------------------------- */

struct mx_pcmap {
    uint64_t *keys;     /* pc + 1, 0 = empty slot */
    uint64_t *info;
    int32_t *func;
    size_t cap, n;
};

static inline size_t slot_of(uint64_t pc, size_t mask)
{
    uint64_t h = pc * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 20) & mask;
}

EXPORT struct mx_pcmap *mx_pcmap_new(void)
{
    struct mx_pcmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 1024;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->info = calloc(m->cap, sizeof *m->info);
    m->func = calloc(m->cap, sizeof *m->func);
    if (!m->keys || !m->info || !m->func) {
        mx_pcmap_free(m);
        return NULL;
    }
    return m;
}

EXPORT void mx_pcmap_free(struct mx_pcmap *m)
{
    if (!m)
        return;
    free(m->keys);
    free(m->info);
    free(m->func);
    free(m);
}

static size_t probe(const struct mx_pcmap *m, uint64_t pc)
{
    size_t mask = m->cap - 1, s = slot_of(pc, mask);
    while (m->keys[s] && m->keys[s] != pc + 1)
        s = (s + 1) & mask;
    return s;
}

static int grow_map(struct mx_pcmap *m)
{
    struct mx_pcmap big = {.cap = m->cap * 2};
    big.keys = calloc(big.cap, sizeof *big.keys);
    big.info = calloc(big.cap, sizeof *big.info);
    big.func = calloc(big.cap, sizeof *big.func);
    if (!big.keys || !big.info || !big.func) {
        free(big.keys);
        free(big.info);
        free(big.func);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t s = probe(&big, m->keys[i] - 1);
            big.keys[s] = m->keys[i];
            big.info[s] = m->info[i];
            big.func[s] = m->func[i];
        }
    free(m->keys);
    free(m->info);
    free(m->func);
    big.n = m->n;
    *m = big;
    return 0;
}

EXPORT int mx_pcmap_put(struct mx_pcmap *m, uint64_t pc, uint64_t info, int32_t func)
{
    if (2 * (m->n + 1) > m->cap && grow_map(m))
        return -1;
    size_t s = probe(m, pc);
    if (!m->keys[s]) {
        m->keys[s] = pc + 1;
        m->n++;
    }
    m->info[s] = info;
    m->func[s] = func;
    return 0;
}

EXPORT size_t mx_pcmap_find(struct mx_pcmap *m, const uint64_t *pcs, const uint8_t *kind, size_t n, int64_t *idx,
                             uint64_t *missing)
{
    size_t nmiss = 0;
    uint64_t last = ~0ULL;
    for (size_t i = 0; i < n; i++) {
        if (kind && kind[i] != MX_FETCH) {
            idx[i] = -1;
            continue;
        }
        size_t s = probe(m, pcs[i]);
        if (m->keys[s]) {
            idx[i] = (int64_t)s;
            continue;
        }
        idx[i] = -1;
        if (pcs[i] != last) {   /* a run of one pc is reported once; Python removes other repeats */
            missing[nmiss++] = pcs[i];
            last = pcs[i];
        }
    }
    return nmiss;
}

/* --- ChampSim ------------------------------------------------------------------------------------------------ */

static void champsim_start(struct mx_champsim_state *st, uint64_t pc, uint8_t size, uint64_t info)
{
    memset(&st->cur, 0, sizeof st->cur);
    st->cur.ip = pc;
    uint64_t regs = MX_INFO_REGS(info);
    for (int r = 0; r < 2; r++)
        st->cur.destination_registers[r] = (uint8_t)(regs >> (8 * r));
    for (int r = 0; r < 4; r++)
        st->cur.source_registers[r] = (uint8_t)(regs >> (8 * (r + 2)));
    st->cur.is_branch = MX_INFO_CLASS(info) != MX_NOT_BRANCH;
    st->next_pc = pc + size;
    st->pending = 1;
    st->nsrc = st->ndst = 0;
}

/* Adds a memory operand unless the instruction has it already (as ChampSim's Pin tracer does); 0 if full. */
static int add_operand(uint64_t *slots, int32_t *n, int cap, uint64_t a)
{
    for (int j = 0; j < *n; j++)
        if (slots[j] == a)
            return 1;
    if (*n == cap)
        return 0;
    slots[(*n)++] = a;
    return 1;
}

EXPORT size_t mx_champsim(const struct mx_cols *c, const int64_t *idx, const struct mx_pcmap *m,
                          struct mx_champsim_state *st, int final, struct mx_champsim_instr *out, uint64_t *drops)
{
    size_t w = 0;
    for (uint64_t i = 0; i < c->n; i++) {
        uint8_t k = c->kind[i];
        if (k == MX_FETCH) {
            if (st->pending) {
                st->cur.branch_taken = st->cur.is_branch && c->pc[i] != st->next_pc;
                out[w++] = st->cur;
            }
            champsim_start(st, c->pc[i], c->size[i], idx[i] >= 0 ? m->info[idx[i]] : 0);
            continue;
        }
        if (drop_other(k, drops))
            continue;
        int write = k == MX_STORE;
        uint64_t a;
        if (k == MX_CMO) {
            int rw = cmo_access(c, i, 64, &a, drops);
            if (!rw)
                continue;
            write = rw == 'W';
        } else {
            int ok;
            a = address(c, i, drops, &ok);
            if (!ok)
                continue;
        }
        if (!st->pending || c->pc[i] != st->cur.ip) {
            drops[MX_DROP_ORPHAN]++;
            continue;
        }
        if (a == 0) {
            drops[MX_DROP_ZERO_ADDR]++;
            continue;
        }
        int room = write ? add_operand(st->cur.destination_memory, &st->ndst, 2, a)
                         : add_operand(st->cur.source_memory, &st->nsrc, 4, a);
        if (!room)
            drops[MX_DROP_MEMOPS]++;
    }
    if (final && st->pending) {
        out[w++] = st->cur;   /* the last instruction: where it went is not in the selection */
        st->pending = 0;
    }
    return w;
}

/* --- calls and returns -------------------------------------------------------------------------------------------- */

#define MAX_FRAMES 65535

struct frame {
    uint64_t ret;       /* the address after the call */
    uint64_t addr;      /* the function's first instruction */
    int32_t func;
};

struct mx_calls_state {
    struct frame *stack;
    size_t depth, cap;
    uint64_t prev_next; /* address after the previous instruction */
    int prev_class;
    int have_prev;
};

EXPORT struct mx_calls_state *mx_calls_new(void)
{
    return calloc(1, sizeof(struct mx_calls_state));
}

EXPORT void mx_calls_free(struct mx_calls_state *s)
{
    if (s)
        free(s->stack);
    free(s);
}

EXPORT uint64_t mx_calls_depth(const struct mx_calls_state *s)
{
    return s->depth;
}

static struct mx_call_event event(uint64_t t, const struct frame *f, size_t depth, int type)
{
    return (struct mx_call_event){.time = t, .addr = f->addr, .func = f->func, .depth = (uint16_t)depth,
                                  .type = (uint8_t)type};
}

EXPORT size_t mx_calls(const struct mx_cols *c, const int64_t *idx, const struct mx_pcmap *m,
                       struct mx_calls_state *s, struct mx_call_event *out, size_t cap)
{
    size_t w = 0;
    for (uint64_t i = 0; i < c->n; i++) {
        if (c->kind[i] != MX_FETCH)
            continue;
        uint64_t pc = c->pc[i];
        int64_t slot = idx[i];
        if (s->have_prev && (s->prev_class == MX_CALL || s->prev_class == MX_CALL_INDIRECT)) {
            int32_t f = slot >= 0 ? m->func[slot] : -1;
            if (f >= 0 && s->depth < MAX_FRAMES && w < cap) {
                if (s->depth == s->cap) {
                    size_t ncap = s->cap ? 2 * s->cap : 64;
                    struct frame *st = realloc(s->stack, ncap * sizeof *st);
                    if (!st)
                        return w;
                    s->stack = st;
                    s->cap = ncap;
                }
                struct frame *fr = &s->stack[s->depth];
                *fr = (struct frame){.ret = s->prev_next, .addr = pc, .func = f};
                out[w++] = event(c->time[i], fr, s->depth, 0);
                s->depth++;
            }
        } else if (s->have_prev && s->prev_class == MX_RETURN) {
            size_t j = s->depth;
            while (j > 0 && s->stack[j - 1].ret != pc)
                j--;
            if (j > 0) {   /* returned to the caller of frame j - 1: it and every frame above it end here */
                while (s->depth >= j && w < cap) {
                    s->depth--;
                    out[w++] = event(c->time[i], &s->stack[s->depth], s->depth, 1);
                }
            }
        }
        s->prev_class = slot >= 0 ? (int)MX_INFO_CLASS(m->info[slot]) : MX_NOT_BRANCH;
        s->prev_next = pc + c->size[i];
        s->have_prev = 1;
    }
    return w;
}

EXPORT size_t mx_calls_close(struct mx_calls_state *s, uint64_t t, struct mx_call_event *out, size_t cap)
{
    size_t w = 0;
    while (s->depth > 0 && w < cap) {
        s->depth--;
        out[w++] = event(t, &s->stack[s->depth], s->depth, 1);
    }
    return w;
}

EXPORT size_t mx_chrome_calls(const struct mx_call_event *ev, size_t n, const char *blob, const uint64_t *name_off,
                              uint32_t pid, uint32_t tid, char *out)
{
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        o = put_str(o, ",\n{\"name\":\"");
        o = put_str(o, blob + name_off[ev[i].func]);
        o = put_str(o, ev[i].type ? "\",\"ph\":\"E\",\"pid\":" : "\",\"ph\":\"B\",\"pid\":");
        o = mx_put_dec(o, pid);
        o = put_str(o, ",\"tid\":");
        o = mx_put_dec(o, tid);
        o = put_str(o, ",\"ts\":");
        o = mx_put_dec(o, ev[i].time / 1000);
        *o++ = '.';
        uint64_t frac = ev[i].time % 1000;
        *o++ = (char)('0' + frac / 100);
        *o++ = (char)('0' + frac / 10 % 10);
        *o++ = (char)('0' + frac % 10);
        *o++ = '}';
    }
    return (size_t)(o - out);
}
