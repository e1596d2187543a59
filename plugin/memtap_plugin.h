/* Shared state of the memtap plugin: configuration, per-vCPU recording state, and the interfaces between the
 * plugin's parts (hooks -> buffers -> sink, control, arch). */
#ifndef MEMTAP_PLUGIN_H
#define MEMTAP_PLUGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memtap/trace.h"
#include "qemu_api.h"

#define MT_LOCAL __attribute__((visibility("hidden")))

/* Tracing switches, kept together in one word so a marker flips them atomically. */
#define MT_TRACE_FETCH 0x1u
#define MT_TRACE_LOAD 0x2u
#define MT_TRACE_STORE 0x4u
#define MT_TRACE_DATA (MT_TRACE_LOAD | MT_TRACE_STORE)
#define MT_TRACE_ALL (MT_TRACE_FETCH | MT_TRACE_DATA)

enum mt_addr_mode { MT_ADDR_VIRTUAL = 1, MT_ADDR_PHYSICAL = 2, MT_ADDR_BOTH = 3 };
enum mt_sink_kind { MT_SINK_FILE, MT_SINK_NULL };

struct mt_config {
    const char *out;
    enum mt_sink_kind sink;
    unsigned events;           /* MT_TRACE_* selected by the user */
    enum mt_addr_mode addr;
    bool start_on_marker;
    uint64_t max_insns;        /* 0: no limit */
    uint64_t vcpu_mask;        /* bit per vCPU index (< 64); all ones: every vCPU */
    unsigned nbuffers;         /* 0: derived from the vCPU count */
    unsigned buffer_events;
    int zstd_level;
    bool append;               /* the file already holds memtap record's header */
    bool counts;               /* counts mode: per-instruction counters instead of records (counts.c) */
    bool values;               /* data events carry the value loaded or stored (value columns) */
};

/* Translation-time description of one block; its instructions follow it in memory. */
struct mt_insn_info;
struct mt_tb_info {
    uint32_t first_id;
    uint16_t n;
    uint8_t priv;
};
struct mt_insn_info {
    const struct mt_tb_info *tb;
    uint64_t vaddr;
    uint32_t id;
    uint16_t idx;
    int16_t marker_op;         /* -1: not a marker; MEMTAP_OP_* or MT_MARKER_MARK */
    uint16_t marker_arg;
};
#define MT_MARKER_MARK 16

/* One chunk's worth of events, stored as the columns of an EVENTS chunk (trace.h), so the sink compresses them
 * in place. icount and pos hold differences; addr columns hold only non-EXEC events. (Rows turned into columns
 * by the sink were tried: less work per access, but more in all, and slower with a file on 2 cores.) */
struct mt_buffer {
    uint8_t *kind, *flags;
    uint16_t *count, *icount, *pos;
    uint32_t *insn;
    uint64_t *vaddr, *paddr, *icount_wide, *pos_wide;
    uint64_t *value, *value_hi;   /* with values: one per addressed event; the high halves of 16-byte ones */
    size_t n, m;               /* events, addressed events */
    size_t wi, wp;             /* escaped icount and pos differences */
    size_t wv;                 /* 16-byte values */
    unsigned vcpu;
    uint64_t ticket;           /* submission order: chunks are written in this order */
    struct mt_buffer *next;
};

/* Per-vCPU recording state: touched only by that vCPU's thread while it runs. */
#define MT_INFO_CACHE 16
struct mt_vcpu {
    struct mt_buffer *buf;
    size_t n, m, wi, wp, wv, cap;  /* fill of buf */
    struct mt_buffer cols;         /* buf's column pointers, copied here to keep the emit path short */
    uint64_t last_icount, last_pos;   /* of the previous event's last record, for the difference columns */
    const struct mt_tb_info *tb;   /* block being executed */
    uint32_t done;                 /* instructions of `tb` already accounted */
    bool traced;                   /* passes the vCPU filter */
    unsigned insn_on;              /* MT_TRACE_* that apply to the last accounted instruction */
    uint64_t icount;
    uint64_t last_pc;              /* the last instruction started (records mode), for traps without a saved PC */
    uint64_t exc_from, exc_to;     /* QEMU >= 10.2: a discontinuity waiting for the next block, its handler */
    uint64_t exc_cause;
    uint8_t exc_type;              /* its QEMU_PLUGIN_DISCON_* type; 0: none waiting */
    uint8_t exc_flags;             /* MEMTAP_EVF_EXC_CAUSE and _INTERRUPT, from the trap registers */
    uint64_t records[6];           /* fetch, load, store, marker, cmo, exception (MT_REC_*) */
    _Atomic(uint64_t *) progress;  /* this vCPU's scoreboard slot (see hooks.c) */
    /* access_flags' cache: meminfo values (opaque) and their event flags, direct-mapped */
    qemu_plugin_meminfo_t info_tag[MT_INFO_CACHE];
    uint8_t info_flags[MT_INFO_CACHE];
    uint32_t info_valid;   /* a bit per entry */
} __attribute__((aligned(64)));

extern MT_LOCAL struct mt_config mt_cfg;
extern MT_LOCAL _Atomic unsigned mt_trace_on;   /* MT_TRACE_* currently active */
extern MT_LOCAL bool mt_smp;
extern MT_LOCAL struct mt_vcpu *mt_vcpus;
extern MT_LOCAL unsigned mt_max_vcpus;

/* control.c: positions, instruction budget, markers. */
extern MT_LOCAL _Atomic uint64_t mt_next_pos;   /* the next global position */

/* n consecutive global positions; with one vCPU thread no atomic read-modify-write is needed. */
static inline uint64_t mt_take_pos(uint64_t n)
{
    if (mt_smp) {
        return atomic_fetch_add_explicit(&mt_next_pos, n, memory_order_relaxed);
    }
    uint64_t p = atomic_load_explicit(&mt_next_pos, memory_order_relaxed);
    atomic_store_explicit(&mt_next_pos, p + n, memory_order_relaxed);
    return p;
}
MT_LOCAL uint32_t mt_budget(uint32_t n);
/* Accounts for instructions [v->done, upto) of the current block: they were started, so they count in icount.
 * Returns how many of them, from the first, become fetch records (0 while fetches are not traced); the caller
 * emits them, alone (mt_account) or fused into the data event of the run's last instruction (hooks.c). */
static inline __attribute__((always_inline)) uint32_t mt_account_run(struct mt_vcpu *v, uint32_t upto)
{
    uint32_t k = upto - v->done;
    unsigned on = atomic_load_explicit(&mt_trace_on, memory_order_relaxed);
    uint32_t fetches = 0;
    v->insn_on = 0;
    if (v->traced && on) {
        uint32_t traced = mt_cfg.max_insns ? mt_budget(k) : k;
        if (traced == k) {
            v->insn_on = on;   /* the run's last instruction is within budget: its accesses are traced too */
        }
        if (on & MT_TRACE_FETCH) {
            fetches = traced;
            v->records[0] += traced;
        }
    }
    v->icount += k;
    v->done = upto;
    return fetches;
}
/* Fetches accounted for but not yet emitted: instructions first_id.. of the current block. */
struct mt_run_pending {
    uint32_t n, first_id;
    uint64_t first_icount;
};
/* mt_account_run, keeping its fetches in *run for the caller to emit (mt_account) or fuse (hooks.c). */
static inline __attribute__((always_inline)) void mt_account_pending(struct mt_vcpu *v, uint32_t upto,
                                                                     struct mt_run_pending *run)
{
    run->first_id = v->tb->first_id + v->done;
    run->first_icount = v->icount + 1;
    run->n = mt_account_run(v, upto);
}
MT_LOCAL void mt_account(struct mt_vcpu *v, uint32_t upto);
MT_LOCAL void mt_marker(struct mt_vcpu *v, const struct mt_insn_info *ii);
MT_LOCAL void mt_emit_mark(struct mt_vcpu *v, const struct mt_insn_info *ii, uint64_t value);
MT_LOCAL unsigned mt_control_command(unsigned cmd, uint64_t arg);   /* MEMTAP_RING_CMD_* -> MEMTAP_RING_OK/ERR_* */
MT_LOCAL void mt_take_mark(struct mt_vcpu *v, const struct mt_insn_info *ii);
extern MT_LOCAL _Atomic bool mt_mark_pending;   /* a control-channel marker waits for the next vCPU */

/* At block entry (and, when only data is traced, at each access): places a pending control-channel marker. */
static inline void mt_poll_mark(struct mt_vcpu *v, const struct mt_insn_info *ii)
{
    if (__builtin_expect(atomic_load_explicit(&mt_mark_pending, memory_order_relaxed), 0)) {
        mt_take_mark(v, ii);
    }
}

/* buffer.c: fixed pool of event buffers handed between vCPU threads and the sink thread. */
MT_LOCAL int mt_buffers_init(unsigned nbuffers, size_t events_per_buffer);
MT_LOCAL struct mt_buffer *mt_buffer_get(unsigned vcpu);
MT_LOCAL void mt_buffer_submit(struct mt_buffer *b);
MT_LOCAL struct mt_buffer *mt_buffer_next_full(void);
MT_LOCAL void mt_buffer_release(struct mt_buffer *b);
MT_LOCAL void mt_buffers_close(void);
MT_LOCAL void mt_vcpu_swap(struct mt_vcpu *v);
MT_LOCAL void mt_vcpu_flush(struct mt_vcpu *v);

/* Appends one event; addressed events (all but EXEC) also fill the address columns. Always inlined: a call with
 * nine arguments costs more than the body, which runs at every access. */
static inline __attribute__((always_inline)) void mt_emit(struct mt_vcpu *v, uint8_t kind, uint8_t flags,
                                                          uint16_t count, uint32_t insn, uint64_t icount,
                                                          uint64_t pos, uint64_t vaddr, uint64_t paddr)
{
    if (__builtin_expect(v->n == v->cap, 0)) {
        mt_vcpu_swap(v);
    }
    struct mt_buffer *b = &v->cols;
    size_t i = v->n++;
    b->kind[i] = kind;
    b->flags[i] = flags;
    b->count[i] = count;
    b->insn[i] = insn;
    /* Differences to the last record the previous event covered: 0 or 1 in a full trace, nearly free to compress;
     * a difference that does not fit 16 bits is escaped to a wide column. */
    uint64_t di = icount - v->last_icount, dp = pos - v->last_pos;
    if (__builtin_expect(di < MEMTAP_WIDE, 1)) {
        b->icount[i] = (uint16_t)di;
    } else {
        b->icount[i] = MEMTAP_WIDE;
        b->icount_wide[v->wi++] = di;
    }
    if (__builtin_expect(dp < MEMTAP_WIDE, 1)) {
        b->pos[i] = (uint16_t)dp;
    } else {
        b->pos[i] = MEMTAP_WIDE;
        b->pos_wide[v->wp++] = dp;
    }
    v->last_icount = icount + (kind == MEMTAP_EV_EXEC ? count - 1u : 0u);
    v->last_pos = pos + (kind == MEMTAP_EV_EXEC ? count - 1u : 0u);
    if (kind != MEMTAP_EV_EXEC) {
        size_t j = v->m++;
        b->vaddr[j] = vaddr;
        /* paddr - vaddr; 0 for an access whose physical address is not recorded, which then costs nothing */
        b->paddr[j] = kind == MEMTAP_EV_DATA && !(flags & MEMTAP_EVF_PADDR) ? 0 : paddr - vaddr;
        if (mt_cfg.values) {
            b->value[j] = 0;   /* a data event's caller fills it in (mt_emit_value) */
        }
    }
}

/* n fetches, instructions first_id.. of the current block, as one EXEC event (none if n is 0). */
static inline void mt_emit_exec(struct mt_vcpu *v, uint32_t first_id, uint64_t first_icount, uint32_t n)
{
    if (n) {
        mt_emit(v, MEMTAP_EV_EXEC, 0, (uint16_t)n, first_id, first_icount, mt_take_pos(n), 0, 0);
    }
}

/* Sets the value of the data event just emitted; `hi` only for 16-byte accesses. */
static inline void mt_emit_value(struct mt_vcpu *v, uint64_t lo, bool wide, uint64_t hi)
{
    v->cols.value[v->m - 1] = lo;
    if (wide) {
        v->cols.value_hi[v->wv++] = hi;
    }
}

/* insns.c: the growing instruction table that the sink writes out. */
MT_LOCAL uint32_t mt_insns_add(const struct memtap_insn *insns, uint32_t n, struct memtap_insn_paddr *paddrs,
                               uint32_t npaddrs);
MT_LOCAL struct memtap_insn *mt_insns_take(uint32_t *count);
MT_LOCAL struct memtap_insn_paddr *mt_insns_take_paddrs(uint32_t *count);
MT_LOCAL void mt_insns_keep(void);                          /* keep every entry for mt_insn_at (the ring) */
MT_LOCAL const struct memtap_insn *mt_insn_at(uint32_t id);
MT_LOCAL bool mt_insn_fetch_paddr(const struct memtap_insn *in, uint64_t *paddr);   /* false: not known */
/* The ring record of the fetch run that can start at a kept instruction, made once per translation: a
 * MEMTAP_KIND_FETCH_RUN record (size: the run's length, value/value_hi: its instructions' sizes, trace.h), or a
 * MEMTAP_KIND_FETCH record for an instruction no run can describe; pos, icount and vcpu are left 0. */
MT_LOCAL const struct memtap_record *mt_fetch_record_at(uint32_t id);

/* ring.c: the live shared-memory ring and its control channel (docs/ring.md). */
extern MT_LOCAL bool mt_ring_enabled;
MT_LOCAL int mt_ring_arg(const char *key, size_t klen, const char *value);   /* 1: not a ring option */
MT_LOCAL int mt_ring_open(void);
MT_LOCAL void mt_ring_process(const struct mt_buffer *b);
MT_LOCAL void mt_ring_finish(void);
MT_LOCAL uint64_t mt_ring_dropped(void);

/* sink.c */
MT_LOCAL int mt_sink_open(const char *info_json);
MT_LOCAL void mt_sink_close(char *(*end_json)(void));
MT_LOCAL uint64_t mt_sink_events_written(void);
MT_LOCAL void mt_sink_process(struct mt_buffer *b);
MT_LOCAL uint64_t mt_buffers_submitted(void);
MT_LOCAL int mt_sink_error(void);
MT_LOCAL void mt_sink_write_counts(const struct memtap_count *rows, size_t n);

/* decode.c: atomics, exclusives and cache operations, decoded at translation time. */
enum mt_ea_kind { MT_EA_NONE, MT_EA_REGS, MT_EA_PC, MT_EA_PC_NEXT, MT_EA_SET_WAY };
struct mt_ea {                 /* seg_base + ((base + (index << scale) + disp) truncated if addr32) */
    int64_t disp;
    uint8_t kind;              /* enum mt_ea_kind; MT_EA_PC: pc + disp; MT_EA_PC_NEXT: next pc + disp */
    int8_t base, index;        /* decoder register numbers, -1: none */
    uint8_t scale, seg, addr32, next_pc_offset;
};
struct mt_insn_class {
    uint8_t flags;             /* MEMTAP_INSN_ATOMIC, MEMTAP_INSN_EXCLUSIVE, MEMTAP_INSN_CMO */
    uint8_t cmo;               /* memtap_insn.cmo */
    struct mt_ea ea;           /* MEMTAP_INSN_CMO: where its address comes from */
};
#define MT_REC_CMO 4
#define MT_REC_EXCEPTION 5
enum mt_decoded { MT_DEC_PLAIN, MT_DEC_SPECIAL, MT_DEC_UNKNOWN };
MT_LOCAL void mt_decode_init(void);
MT_LOCAL void mt_decode_vcpu_init(void);
MT_LOCAL enum mt_decoded mt_decode(const uint8_t *bytes, size_t size, struct mt_insn_class *c);
extern MT_LOCAL _Atomic uint64_t mt_undecoded;   /* instructions whose bytes or encoding could not be decoded */
MT_LOCAL bool mt_decode_ea(const struct mt_ea *ea, uint64_t pc, uint64_t *out);

/* regs.c: guest registers by name. */
MT_LOCAL void mt_regs_find(const char *const *names, size_t n, struct qemu_plugin_register **handles);
MT_LOCAL bool mt_regs_read(struct qemu_plugin_register *handle, uint64_t *value);
extern MT_LOCAL bool mt_regs_big_endian;

/* exceptions.c: trap vectors and the registers that say why a trap happened. */
enum mt_vector_class { MT_VEC_RISCV, MT_VEC_SYNC, MT_VEC_ASYNC, MT_VEC_INDEX };
struct mt_vector {
    struct qemu_plugin_register *cause, *epc;   /* NULL: not kept by the architecture */
    uint8_t cls;               /* enum mt_vector_class */
    uint8_t async_kind;        /* AArch64: 1 IRQ, 2 FIQ, 3 SError */
    uint8_t index;             /* MT_VEC_INDEX: the vector's number, which is the cause */
    bool interrupt;            /* MT_VEC_INDEX: an asynchronous vector */
};
MT_LOCAL void mt_exc_init(void);
MT_LOCAL void mt_exc_vcpu_init(void);
MT_LOCAL bool mt_exc_vectors_known(void);
MT_LOCAL bool mt_exc_vector(uint64_t pc, uint8_t priv, struct mt_vector *vec);
MT_LOCAL uint8_t mt_exc_read(const struct mt_vector *vec, uint64_t *from, uint64_t *cause);
MT_LOCAL bool mt_exc_discon_register(qemu_plugin_id_t id, qemu_plugin_vcpu_discon_cb_t cb);   /* QEMU >= 10.2 */
MT_LOCAL uint8_t mt_exc_discon_cause(uint64_t to, uint64_t *from, uint64_t *cause);

/* mmu.c: instructions' physical addresses, translated by QEMU (10.1 and later), or known to equal their virtual
 * addresses because a block's fetches are untranslated. */
MT_LOCAL void mt_mmu_init(void);
MT_LOCAL void mt_mmu_vcpu_init(void);
MT_LOCAL bool mt_mmu_fetch_untranslated(uint8_t priv);
MT_LOCAL bool mt_mmu_translates(void);
MT_LOCAL bool mt_mmu_translate(uint64_t vaddr, uint64_t *paddr);   /* in a vCPU callback only */

/* counts.c */
MT_LOCAL void mt_counts_tb(struct qemu_plugin_tb *tb, uint32_t first_id, uint16_t n);
MT_LOCAL int mt_counts_start(void);
MT_LOCAL void mt_counts_finish(uint64_t totals[3]);
MT_LOCAL void mt_control_init(void);

/* arch.c */
/* The QEMU targets memtap knows, named in one place (arch.c's table); every per-architecture part switches on it. */
enum mt_target {
    MT_TARGET_NONE,
    MT_TARGET_X86_64,
    MT_TARGET_I386,
    MT_TARGET_AARCH64,
    MT_TARGET_ARM,
    MT_TARGET_RISCV64,
    MT_TARGET_RISCV32,
    MT_TARGET_PPC,
};
extern MT_LOCAL enum mt_target mt_target;   /* set by mt_arch_init; MT_TARGET_NONE for an unknown target */
MT_LOCAL int mt_arch_init(const char *target);
MT_LOCAL void mt_arch_vcpu_init(void);
MT_LOCAL uint8_t mt_arch_priv(void);
MT_LOCAL const char *mt_arch_priv_source(void);
MT_LOCAL bool mt_arch_thumb(void);
MT_LOCAL bool mt_arch_marker(const uint8_t *bytes, size_t size, int16_t *op, uint16_t *arg);

#endif /* MEMTAP_PLUGIN_H */
