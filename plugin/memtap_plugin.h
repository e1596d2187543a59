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
    uint32_t id;
    uint16_t idx;
    int16_t marker_op;         /* -1: not a marker; MEMTAP_OP_* or MT_MARKER_MARK */
    uint16_t marker_arg;
};
#define MT_MARKER_MARK 16

/* One chunk's worth of events, stored as the columns of an EVENTS chunk (trace.h), so the sink compresses them
 * in place. icount and pos hold differences; addr columns hold only non-EXEC events. */
struct mt_buffer {
    uint8_t *kind, *flags;
    uint16_t *count, *icount, *pos;
    uint32_t *insn;
    uint64_t *vaddr, *paddr, *icount_wide, *pos_wide;
    size_t n, m;               /* events, addressed events */
    size_t wi, wp;             /* escaped icount and pos differences */
    unsigned vcpu;
    uint64_t ticket;           /* submission order: chunks are written in this order */
    struct mt_buffer *next;
};

/* Per-vCPU recording state: touched only by that vCPU's thread while it runs. */
struct mt_vcpu {
    struct mt_buffer *buf;
    size_t n, m, wi, wp, cap;      /* fill of buf */
    struct mt_buffer cols;         /* buf's column pointers, copied here to keep the emit path short */
    uint64_t last_icount, last_pos;   /* of the previous event's last record, for the difference columns */
    const struct mt_tb_info *tb;   /* block being executed */
    uint32_t done;                 /* instructions of `tb` already accounted */
    bool traced;                   /* passes the vCPU filter */
    unsigned insn_on;              /* MT_TRACE_* that apply to the last accounted instruction */
    uint64_t icount;
    uint64_t records[4];           /* fetch, load, store, marker */
    _Atomic(uint64_t *) progress;  /* this vCPU's scoreboard slot (see hooks.c) */
    qemu_plugin_meminfo_t last_info;
    uint8_t last_flags;
    bool last_info_valid;
} __attribute__((aligned(64)));

extern MT_LOCAL struct mt_config mt_cfg;
extern MT_LOCAL _Atomic unsigned mt_trace_on;   /* MT_TRACE_* currently active */
extern MT_LOCAL bool mt_smp;
extern MT_LOCAL struct mt_vcpu *mt_vcpus;
extern MT_LOCAL unsigned mt_max_vcpus;

/* control.c: positions, instruction budget, markers. */
MT_LOCAL uint64_t mt_take_pos(uint64_t n);
MT_LOCAL uint32_t mt_budget(uint32_t n);
MT_LOCAL void mt_account(struct mt_vcpu *v, uint32_t upto);
MT_LOCAL void mt_marker(struct mt_vcpu *v, const struct mt_insn_info *ii);
MT_LOCAL void mt_emit_mark(struct mt_vcpu *v, const struct mt_insn_info *ii, uint64_t value);

/* buffer.c: fixed pool of event buffers handed between vCPU threads and the sink thread. */
MT_LOCAL int mt_buffers_init(unsigned nbuffers, size_t events_per_buffer);
MT_LOCAL struct mt_buffer *mt_buffer_get(unsigned vcpu);
MT_LOCAL void mt_buffer_submit(struct mt_buffer *b);
MT_LOCAL struct mt_buffer *mt_buffer_next_full(void);
MT_LOCAL void mt_buffer_release(struct mt_buffer *b);
MT_LOCAL void mt_buffers_close(void);
MT_LOCAL void mt_vcpu_swap(struct mt_vcpu *v);
MT_LOCAL void mt_vcpu_flush(struct mt_vcpu *v);

/* Appends one event; `addressed` events (DATA, MARK) also fill the address columns. */
static inline void mt_emit(struct mt_vcpu *v, uint8_t kind, uint8_t flags, uint16_t count, uint32_t insn,
                           uint64_t icount, uint64_t pos, uint64_t vaddr, uint64_t paddr)
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
        b->paddr[j] = paddr - vaddr;
    }
}

/* insns.c: the growing instruction table that the sink writes out. */
MT_LOCAL uint32_t mt_insns_add(const struct memtap_insn *insns, uint32_t n);
MT_LOCAL struct memtap_insn *mt_insns_take(uint32_t *count);

/* sink.c */
MT_LOCAL int mt_sink_open(const char *info_json);
MT_LOCAL void mt_sink_close(char *(*end_json)(void));
MT_LOCAL uint64_t mt_sink_events_written(void);
MT_LOCAL void mt_sink_process(struct mt_buffer *b);
MT_LOCAL uint64_t mt_buffers_submitted(void);
MT_LOCAL int mt_sink_error(void);
MT_LOCAL void mt_control_init(void);

/* arch.c */
MT_LOCAL int mt_arch_init(const char *target);
MT_LOCAL void mt_arch_vcpu_init(void);
MT_LOCAL uint8_t mt_arch_priv(void);
MT_LOCAL const char *mt_arch_priv_source(void);
MT_LOCAL bool mt_arch_marker(const uint8_t *bytes, size_t size, int16_t *op, uint16_t *arg);

#endif /* MEMTAP_PLUGIN_H */
