/* The QEMU-facing side: plugin arguments, translation-time instrumentation and the execution callbacks.
 *
 * Per block: one callback at block entry (accounts for the previous block's started instructions) and one
 * inline store per instruction (records how far the block got, so a block left early by a fault or interrupt
 * counts only what ran). Per traced load/store: one callback that appends a DATA event. Markers get an
 * instruction callback of their own. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memtap_plugin.h"

MT_EXPORT int qemu_plugin_version = 4;

MT_LOCAL struct mt_config mt_cfg = {
    .sink = MT_SINK_FILE,
    .events = MT_TRACE_ALL,
    .addr = MT_ADDR_BOTH,
    .vcpu_mask = ~0ull,
    .buffer_events = 1u << 16,
    .zstd_level = 3,
};
MT_LOCAL bool mt_smp;
MT_LOCAL struct mt_vcpu *mt_vcpus;
MT_LOCAL unsigned mt_max_vcpus;

/* Per vCPU, updated by inline ops: how far the current block got (1 + index of the last started instruction),
 * and, in the data-only mode, the started instructions: icount - left (see below). */
struct mt_slot {
    uint64_t progress;
    uint64_t icount;
    uint64_t exc_waiting;   /* a discontinuity waits for its handler's block (data-only mode's condition) */
    uint64_t left;          /* instructions of the current block after the last started one */
};
static struct qemu_plugin_scoreboard *progress;
/* Data-only tracing needs no block callback in the common case. A block adds its length to icount as it starts,
 * and each instruction stores how many of the block come after it (an inline store, which, unlike an add per
 * instruction, makes no chain of dependent memory operations through the guest's code): icount - left counts the
 * instructions started. The next block corrects icount for a block left early (a conditional callback), and an
 * instruction that QEMU re-executes alone after I/O (no inline ops) finds left where its block stopped. */
static bool data_only;
static bool vectors_known;   /* trap vectors are recognised (exceptions.c); otherwise early exits are the sign */
static bool discon;          /* QEMU >= 10.2 calls back at every exception and interrupt: neither is needed */
static char target[32];
static int api_version;

/* Scoreboard slots move only when QEMU grows the scoreboard for a new vCPU, which it does before that vCPU's init
 * callback and with a TB flush; both refresh the cached pointers. */
static void refresh_progress(void)
{
    int created = qemu_plugin_num_vcpus();
    for (unsigned i = 0; i < mt_max_vcpus && (int)i < created; i++) {
        atomic_store_explicit(&mt_vcpus[i].progress, qemu_plugin_scoreboard_find(progress, i),
                              memory_order_relaxed);
    }
}

static inline uint64_t *progress_of(unsigned vcpu)
{
    return atomic_load_explicit(&mt_vcpus[vcpu].progress, memory_order_relaxed);
}

static inline uint64_t inline_icount(unsigned vcpu)
{
    const struct mt_slot *slot = (const struct mt_slot *)progress_of(vcpu);
    return slot->icount - slot->left;
}

/* The access flags of a meminfo value. An instruction repeats its meminfo, and a loop has a few of them: a small
 * cache per vCPU saves four calls into QEMU at nearly every access. */
static inline uint8_t access_flags(struct mt_vcpu *v, qemu_plugin_meminfo_t info)
{
    unsigned i = (info ^ (info >> 4) ^ (info >> 12) ^ (info >> 20)) % MT_INFO_CACHE;
    if (__builtin_expect(v->info_tag[i] != info || !(v->info_valid >> i & 1), 0)) {
        uint8_t f = (uint8_t)(qemu_plugin_mem_size_shift(info) & MEMTAP_EVF_SIZE_MASK);
        f |= qemu_plugin_mem_is_store(info) ? MEMTAP_EVF_STORE : 0;
        f |= qemu_plugin_mem_is_sign_extended(info) ? MEMTAP_EVF_SIGNED : 0;
        f |= qemu_plugin_mem_is_big_endian(info) ? MEMTAP_EVF_BIG_ENDIAN : 0;
        v->info_tag[i] = info;
        v->info_flags[i] = f;
        v->info_valid |= 1u << i;
    }
    return v->info_flags[i];
}

/* An exception record: the trap entered the handler whose first instruction is `handler`. */
static void emit_exception(struct mt_vcpu *v, const struct mt_insn_info *handler, uint64_t icount, uint8_t flags,
                           uint64_t from, uint64_t cause)
{
    if (!v->traced || !atomic_load_explicit(&mt_trace_on, memory_order_relaxed)) {
        return;
    }
    mt_emit(v, MEMTAP_EV_EXCEPTION, flags, 1, handler->id, icount, mt_take_pos(1), from, cause);
    v->records[MT_REC_EXCEPTION]++;
}

/* Without known trap vectors, a block left in its middle is the one sign of a synchronous exception; a block
 * that restarts at the instruction where the last one stopped is QEMU re-executing it (an MMIO access), and one
 * that goes on with the next instruction is QEMU stopping after a device access that changed the vCPU's state
 * (an interrupt controller's end-of-interrupt), not a trap. */
static void early_exit(struct mt_vcpu *v, uint32_t progress, const struct mt_tb_info *next)
{
    const struct mt_insn_info *left = (const struct mt_insn_info *)(v->tb + 1);
    const struct mt_insn_info *to = (const struct mt_insn_info *)(next + 1);
    if (progress && progress < v->tb->n && next->n && to->vaddr != left[progress - 1].vaddr &&
        to->vaddr != left[progress].vaddr) {
        emit_exception(v, to, v->icount, MEMTAP_EVF_EXC_FROM, left[progress - 1].vaddr, 0);
    }
}

/* QEMU >= 10.2: vCPU `vcpu` took an interrupt or exception. The record waits for the next block, the handler's,
 * which names its first instruction. */
static void on_discon(qemu_plugin_id_t id, unsigned vcpu, enum qemu_plugin_discon_type type, uint64_t from,
                      uint64_t to)
{
    (void)id;
    if (vcpu >= mt_max_vcpus) {
        return;
    }
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    if (v->exc_type && v->exc_to != v->exc_from) {
        from = v->exc_from;     /* no instruction ran since the last one (its handler faulted): one jump */
    }
    if (v->exc_type) {
        type = v->exc_type;     /* x86 reports an exception where it is raised (to = from), then its delivery */
    }
    v->exc_to = to;
    v->exc_type = (uint8_t)type;
    v->exc_flags = mt_exc_discon_cause(to, &from, &v->exc_cause);   /* registers are readable here only */
    v->exc_from = from;
    ((struct mt_slot *)progress_of(vcpu))->exc_waiting = 1;
}

/* The block `next` starts the handler of a waiting discontinuity; the vCPU's last instruction was `icount`. */
static void record_discon(struct mt_vcpu *v, unsigned vcpu, const struct mt_tb_info *next, uint64_t icount)
{
    uint8_t flags = MEMTAP_EVF_EXC_FROM | v->exc_flags;
    if (v->exc_type == QEMU_PLUGIN_DISCON_INTERRUPT) {
        flags |= MEMTAP_EVF_EXC_INTERRUPT;
    }
    v->exc_type = 0;
    ((struct mt_slot *)progress_of(vcpu))->exc_waiting = 0;
    if (next->n) {
        emit_exception(v, (const struct mt_insn_info *)(next + 1), icount, flags, v->exc_from, v->exc_cause);
    }
}

/* Data-only mode: the previous block was left early; icount counted all of it. */
static void on_left_early(unsigned vcpu, void *udata)
{
    (void)udata;
    struct mt_slot *slot = (struct mt_slot *)progress_of(vcpu);
    slot->icount -= slot->left;
    slot->left = 0;
}

/* Data-only mode: the first block after a discontinuity (a conditional callback, so other blocks cost nothing).
 * The inline count does not include this block's first instruction yet. */
static void on_discon_block(unsigned vcpu, void *udata)
{
    record_discon(&mt_vcpus[vcpu], vcpu, udata, inline_icount(vcpu));
}

static void on_tb_exec(unsigned vcpu, void *udata)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    uint64_t *p = progress_of(vcpu);
    if (v->tb && *p > v->done) {
        mt_account(v, (uint32_t)*p);
    }
    if (v->tb && *p) {
        v->last_pc = ((const struct mt_insn_info *)(v->tb + 1))[*p - 1].vaddr;
    }
    if (v->exc_type) {
        record_discon(v, vcpu, udata, v->icount);
    } else if (v->tb && !vectors_known && !discon) {
        early_exit(v, (uint32_t)*p, udata);
    }
    v->tb = udata;
    v->done = 0;
    *p = 0;
    mt_poll_mark(v, (const struct mt_insn_info *)(v->tb + 1));
}

/* Brings the vCPU's icount and tracing switches up to instruction ii, which is accessing memory or a cache:
 * from the inline count in data-only mode, otherwise by accounting the block's instructions up to ii. With run,
 * the fetches of that run are left in it for the caller's event to carry (a DATA event, trace.h): in a full trace
 * most fetch runs end at an instruction that accesses memory, so this halves a memory-heavy guest's events. */
static inline void catch_up(struct mt_vcpu *v, unsigned vcpu, const struct mt_insn_info *ii,
                            struct mt_run_pending *run)
{
    if (data_only) {
        v->icount = inline_icount(vcpu);
        v->insn_on = v->traced ? atomic_load_explicit(&mt_trace_on, memory_order_relaxed) : 0;
    } else if (__builtin_expect(ii->tb != v->tb, 0)) {
        /* A block whose entry was never reported: QEMU re-executes an instruction that did I/O alone, reporting
         * only its accesses (cpu_io_recompile, CF_MEMI_ONLY). The current block had started that instruction. */
        uint64_t progress = *progress_of(vcpu);
        if (v->tb && progress > v->done) {
            mt_account(v, (uint32_t)progress);
        }
    } else if ((uint32_t)ii->idx + 1 > v->done) {
        if (run) {
            mt_account_pending(v, ii->idx + 1u, run);
        } else {
            mt_account(v, ii->idx + 1u);
        }
    }
}

static void on_mem(unsigned vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    const struct mt_insn_info *ii = udata;
    struct mt_run_pending run = {0};
    catch_up(v, vcpu, ii, &run);
    if (data_only) {
        mt_poll_mark(v, ii);   /* no block callback in this mode: a pending ctl mark lands at an access */
    }
    uint8_t flags = access_flags(v, info);
    bool store = flags & MEMTAP_EVF_STORE;
    if (!(v->insn_on & (store ? MT_TRACE_STORE : MT_TRACE_LOAD))) {
        mt_emit_exec(v, run.first_id, run.first_icount, run.n);
        return;
    }
    uint64_t paddr = 0;
    if (mt_cfg.addr & MT_ADDR_PHYSICAL) {
        struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
        if (hw) {
            paddr = qemu_plugin_hwaddr_phys_addr(hw);
            flags |= MEMTAP_EVF_PADDR | (qemu_plugin_hwaddr_is_io(hw) ? MEMTAP_EVF_IO : 0);
        }
    }
    /* The access is traced, so its whole run was (mt_account_run): the run ends with this instruction. */
    mt_emit(v, MEMTAP_EV_DATA, flags, (uint16_t)(run.n + 1), ii->id, v->icount, mt_take_pos(run.n + 1) + run.n,
            (mt_cfg.addr & MT_ADDR_VIRTUAL) ? vaddr : 0, paddr);
    if (mt_cfg.values) {
        qemu_plugin_mem_value val = qemu_plugin_mem_get_value(info);
        switch (val.type) {
        case QEMU_PLUGIN_MEM_VALUE_U8: mt_emit_value(v, val.data.u8, false, 0); break;
        case QEMU_PLUGIN_MEM_VALUE_U16: mt_emit_value(v, val.data.u16, false, 0); break;
        case QEMU_PLUGIN_MEM_VALUE_U32: mt_emit_value(v, val.data.u32, false, 0); break;
        case QEMU_PLUGIN_MEM_VALUE_U64: mt_emit_value(v, val.data.u64, false, 0); break;
        default: mt_emit_value(v, val.data.u128.low, (flags & MEMTAP_EVF_SIZE_MASK) == 4, val.data.u128.high);
        }
    }
    v->records[store ? 2 : 1]++;
}

/* A cache-maintenance or prefetch instruction: QEMU reports no access for it, so its record comes from here. */
struct mt_cmo_info {
    const struct mt_insn_info *ii;
    uint64_t pc;
    struct mt_ea ea;
    uint8_t granularity;
};

static void on_cmo(unsigned vcpu, void *udata)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    const struct mt_cmo_info *c = udata;
    catch_up(v, vcpu, c->ii, NULL);
    if (!(v->insn_on & MT_TRACE_DATA)) {
        return;
    }
    uint64_t ea = 0;
    uint8_t flags = 0;
    if (c->ea.kind != MT_EA_NONE && mt_decode_ea(&c->ea, c->pc, &ea)) {
        flags |= MEMTAP_EVF_CMO_ADDR;
        if (c->granularity == MEMTAP_CMO_SET_WAY) {
            uint8_t level = (uint8_t)(((ea >> 1) & 7) + 1);
            flags |= level <= 3 ? (uint8_t)(level << 1) : 0;
        }
    }
    mt_emit(v, MEMTAP_EV_CMO, flags, 1, c->ii->id, v->icount, mt_take_pos(1), ea, 0);
    v->records[MT_REC_CMO]++;
}

/* The first instruction of a trap vector: read why the vCPU came here (exceptions.c). */
struct mt_trap_info {
    const struct mt_insn_info *ii;
    struct mt_vector vec;
};

static void on_trap(unsigned vcpu, void *udata)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    const struct mt_trap_info *t = udata;
    uint64_t from = 0, cause = 0;
    uint8_t flags = mt_exc_read(&t->vec, &from, &cause);
    if (!(flags & MEMTAP_EVF_EXC_FROM) && !data_only && v->last_pc) {
        from = v->last_pc;   /* the architecture keeps no return address here: the last instruction started */
        flags |= MEMTAP_EVF_EXC_FROM;
    }
    /* Data-only mode keeps icount inline, and the handler's first instruction is already counted in it. */
    emit_exception(v, t->ii, data_only ? inline_icount(vcpu) - 1 : v->icount, flags, from, cause);
}

static void on_marker(unsigned vcpu, void *udata)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    if (data_only) {
        /* No block state to keep: pretend the block starts at the marker, whose icount the inline add gave. */
        const struct mt_insn_info *ii = udata;
        v->tb = ii->tb;
        v->done = ii->idx;
        v->icount = inline_icount(vcpu) - 1;
    }
    mt_marker(v, udata);
}

/* With QEMU >= 10.1: each instruction's physical address, translated while QEMU translates its block (exact for
 * every execution: mmu.c). Rows that differ from vaddr go to *out with ids relative to the block. */
static uint32_t translate_fetches(struct memtap_insn *rows, size_t n, struct memtap_insn_paddr *out)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t paddr;
        if (!mt_mmu_translate(rows[i].vaddr, &paddr)) {
            continue;
        }
        if (paddr == rows[i].vaddr) {
            rows[i].flags |= MEMTAP_INSN_PHYS;
        } else {
            rows[i].flags |= MEMTAP_INSN_PADDR;
            out[k++] = (struct memtap_insn_paddr){.id = (uint32_t)i, .paddr = paddr};
        }
    }
    return k;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct mt_tb_info *t = malloc(sizeof(*t) + n * sizeof(struct mt_insn_info));
    struct memtap_insn *rows = calloc(n ? n : 1, sizeof(*rows));
    if (!t || !rows) {
        abort();
    }
    struct mt_insn_info *ii = (struct mt_insn_info *)(t + 1);
    struct mt_insn_class *cls = calloc(n ? n : 1, sizeof(*cls));
    if (!cls) {
        abort();
    }
    t->n = (uint16_t)n;
    t->priv = mt_arch_priv();
    bool translate = (mt_cfg.addr & MT_ADDR_PHYSICAL) && mt_mmu_translates();
    uint8_t phys = (mt_cfg.addr & MT_ADDR_PHYSICAL) && !translate && mt_mmu_fetch_untranslated(t->priv)
                       ? MEMTAP_INSN_PHYS : 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t bytes[16];
        size_t size = qemu_plugin_insn_size(insn);
        size_t got = qemu_plugin_insn_data(insn, bytes, sizeof(bytes));
        rows[i].vaddr = qemu_plugin_insn_vaddr(insn);
        rows[i].size = (uint8_t)size;
        rows[i].priv = t->priv;
        rows[i].flags = phys;
        ii[i].tb = t;
        ii[i].vaddr = rows[i].vaddr;
        ii[i].idx = (uint16_t)i;
        ii[i].marker_op = -1;
        ii[i].marker_arg = 0;
        if (got == size && mt_arch_marker(bytes, size, &ii[i].marker_op, &ii[i].marker_arg)) {
            rows[i].flags |= MEMTAP_INSN_MARKER;
        } else {
            enum mt_decoded d = got == size ? mt_decode(bytes, size, &cls[i]) : MT_DEC_UNKNOWN;
            if (d == MT_DEC_SPECIAL) {
                rows[i].flags |= cls[i].flags;
                rows[i].cmo = cls[i].cmo;
            } else if (d == MT_DEC_UNKNOWN) {
                atomic_fetch_add_explicit(&mt_undecoded, 1, memory_order_relaxed);   /* traced as plain */
            }
        }
    }
    if (n) {
        rows[0].flags |= MEMTAP_INSN_BLOCK;
    }
    struct memtap_insn_paddr *paddrs = translate ? malloc((n ? n : 1) * sizeof(*paddrs)) : NULL;
    if (translate && !paddrs) {
        abort();
    }
    uint32_t npaddrs = translate ? translate_fetches(rows, n, paddrs) : 0;
    t->first_id = mt_insns_add(rows, (uint32_t)n, paddrs, npaddrs);
    free(paddrs);
    free(rows);
    if (mt_cfg.counts) {
        mt_counts_tb(tb, t->first_id, (uint16_t)n);
        free(t);
        free(cls);
        return;
    }

    qemu_plugin_u64 prog = {progress, offsetof(struct mt_slot, progress)};
    qemu_plugin_u64 count = {progress, offsetof(struct mt_slot, icount)};
    qemu_plugin_u64 left = {progress, offsetof(struct mt_slot, left)};
    if (!data_only) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, t);
    } else {
        /* In this order (QEMU emits a block's ops as registered): fix the last block's count, then the
         * discontinuity's record sees the instructions before this block, then count this block. */
        qemu_plugin_register_vcpu_tb_exec_cond_cb(tb, on_left_early, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_COND_NE,
                                                  left, 0, NULL);
        if (discon) {
            qemu_plugin_u64 waiting = {progress, offsetof(struct mt_slot, exc_waiting)};
            qemu_plugin_register_vcpu_tb_exec_cond_cb(tb, on_discon_block, QEMU_PLUGIN_CB_NO_REGS,
                                                      QEMU_PLUGIN_COND_NE, waiting, 0, t);
        }
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, count, n);
    }
    enum qemu_plugin_mem_rw rw = 0;
    if (mt_cfg.events & MT_TRACE_LOAD) {
        rw |= QEMU_PLUGIN_MEM_R;
    }
    if (mt_cfg.events & MT_TRACE_STORE) {
        rw |= QEMU_PLUGIN_MEM_W;
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        ii[i].id = t->first_id + (uint32_t)i;
        if (data_only) {
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, left, n - i - 1);
        } else {
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, prog, i + 1);
        }
        struct mt_vector vec;
        if (i == 0 && !discon && mt_exc_vector(ii[0].vaddr, t->priv, &vec)) {
            struct mt_trap_info *trap = malloc(sizeof(*trap));
            if (!trap) {
                abort();
            }
            *trap = (struct mt_trap_info){&ii[0], vec};
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_trap, QEMU_PLUGIN_CB_R_REGS, trap);
        }
        if (ii[i].marker_op >= 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, &ii[i]);
        }
        if ((cls[i].flags & MEMTAP_INSN_CMO) && rw) {
            struct mt_cmo_info *c = malloc(sizeof(*c));
            if (!c) {
                abort();
            }
            *c = (struct mt_cmo_info){&ii[i], qemu_plugin_insn_vaddr(insn), cls[i].ea,
                                      MEMTAP_CMO_GRANULARITY(cls[i].cmo)};
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_cmo, QEMU_PLUGIN_CB_R_REGS, c);
        }
        if (rw) {
            qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, rw, &ii[i]);
        }
    }
    free(cls);
}

static void on_flush(qemu_plugin_id_t id)
{
    (void)id;
    refresh_progress();
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned vcpu)
{
    (void)id;
    refresh_progress();
    mt_arch_vcpu_init();
    mt_decode_vcpu_init();
    mt_exc_vcpu_init();
    mt_mmu_vcpu_init();
    if (vcpu < mt_max_vcpus) {
        mt_vcpus[vcpu].traced = vcpu >= 64 ? mt_cfg.vcpu_mask == ~0ull : (mt_cfg.vcpu_mask >> vcpu) & 1;
    }
}

/* Accounts for what each vCPU's last block ran and hands every partial buffer to the sink. */
static void flush_vcpu(unsigned vcpu)
{
    struct mt_vcpu *v = &mt_vcpus[vcpu];
    uint64_t *p = progress_of(vcpu);
    if (data_only && p) {
        v->icount = inline_icount(vcpu);
    } else if (v->tb && *p > v->done) {
        mt_account(v, (uint32_t)*p);
    }
    v->tb = NULL;
    mt_vcpu_flush(v);
}

static void on_vcpu_exit(qemu_plugin_id_t id, unsigned vcpu)
{
    (void)id;
    if (vcpu < mt_max_vcpus) {
        flush_vcpu(vcpu);
    }
}

static uint64_t count_totals[3];   /* counts mode: block entries, loads, stores */

static char *end_json(void)
{
    if (mt_cfg.counts) {
        char *s = malloc(256);
        if (s) {
            snprintf(s, 256,
                     "{\"complete\": true, \"block_entries\": %" PRIu64 ", \"loads\": %" PRIu64
                     ", \"stores\": %" PRIu64 ", \"dropped\": 0, \"priv_source\": \"%s\"}",
                     count_totals[0], count_totals[1], count_totals[2], mt_arch_priv_source());
        }
        return s;
    }
    uint64_t rec[6] = {0}, icount = 0;
    for (unsigned i = 0; i < mt_max_vcpus; i++) {
        for (int k = 0; k < 6; k++) {
            rec[k] += mt_vcpus[i].records[k];
        }
        icount += mt_vcpus[i].icount;
    }
    char *s = malloc(512);
    if (s) {
        snprintf(s, 512,
                 "{\"complete\": true, \"events\": %" PRIu64 ", \"records\": {\"fetch\": %" PRIu64
                 ", \"load\": %" PRIu64 ", \"store\": %" PRIu64 ", \"marker\": %" PRIu64 ", \"cmo\": %" PRIu64 ", \"exception\": %" PRIu64 "}, \"executed_insns\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"undecoded_insns\": %" PRIu64
                 ", \"priv_source\": \"%s\"}",
                 mt_sink_events_written(), rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], icount, mt_ring_dropped(),
                 (uint64_t)mt_undecoded, mt_arch_priv_source());
    }
    return s;
}

static void on_qemu_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    /* Usually every vCPU is paused by now. A guest can also end QEMU with exit() from its own vCPU thread
     * (semihosting, a debug-exit device) while other vCPUs still run: stop tracing and let their callbacks in
     * flight finish before their buffers are taken. */
    unsigned was_on = atomic_exchange(&mt_trace_on, 0);
    if (mt_smp) {
        usleep(10000);
    } else {
        /* The only vCPU is this thread or paused: its last block's started instructions are still to be
         * accounted, under the switches that applied while they ran. */
        atomic_store(&mt_trace_on, was_on);
    }
    for (unsigned i = 0; i < mt_max_vcpus; i++) {
        flush_vcpu(i);
    }
    if (mt_cfg.counts) {
        mt_counts_finish(count_totals);
    }
    mt_sink_close(end_json);
    if (mt_sink_error()) {
        fprintf(stderr, "memtap: the trace is incomplete\n");
    }
}

static int parse_events(const char *v, unsigned *out)
{
    unsigned ev = 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, "+:", &save); tok; tok = strtok_r(NULL, "+:", &save)) {
        if (!strcmp(tok, "fetch")) {
            ev |= MT_TRACE_FETCH;
        } else if (!strcmp(tok, "load")) {
            ev |= MT_TRACE_LOAD;
        } else if (!strcmp(tok, "store")) {
            ev |= MT_TRACE_STORE;
        } else if (!strcmp(tok, "all")) {
            ev |= MT_TRACE_ALL;
        } else {
            return -1;
        }
    }
    *out = ev;
    return ev ? 0 : -1;
}

static int parse_vcpus(const char *v, uint64_t *mask)
{
    char buf[256];
    uint64_t m = 0;
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, "+:", &save); tok; tok = strtok_r(NULL, "+:", &save)) {
        char *end;
        unsigned long i = strtoul(tok, &end, 10);
        if (*end || i >= 64) {
            return -1;
        }
        m |= 1ull << i;
    }
    *mask = m;
    return m ? 0 : -1;
}

static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        return -1;
    }
    size_t klen = (size_t)(eq - arg);
    const char *v = eq + 1;
    char *end = NULL;
#define KEY(k) (klen == strlen(k) && !strncmp(arg, k, klen))
    if (KEY("out")) {
        mt_cfg.out = v;
    } else if (KEY("sink")) {
        if (!strcmp(v, "file")) {
            mt_cfg.sink = MT_SINK_FILE;
        } else if (!strcmp(v, "null")) {
            mt_cfg.sink = MT_SINK_NULL;
        } else {
            return -1;
        }
    } else if (KEY("events")) {
        return parse_events(v, &mt_cfg.events);
    } else if (KEY("addr")) {
        if (!strcmp(v, "virtual")) {
            mt_cfg.addr = MT_ADDR_VIRTUAL;
        } else if (!strcmp(v, "physical")) {
            mt_cfg.addr = MT_ADDR_PHYSICAL;
        } else if (!strcmp(v, "both")) {
            mt_cfg.addr = MT_ADDR_BOTH;
        } else {
            return -1;
        }
    } else if (KEY("values")) {
        mt_cfg.values = !strcmp(v, "on");
    } else if (KEY("counts")) {
        mt_cfg.counts = !strcmp(v, "on");
    } else if (KEY("append")) {
        mt_cfg.append = !strcmp(v, "on");
    } else if (KEY("start_on_marker")) {
        mt_cfg.start_on_marker = !strcmp(v, "on") || !strcmp(v, "true");
    } else if (KEY("max_insns")) {
        mt_cfg.max_insns = strtoull(v, &end, 10);
        return *end || !mt_cfg.max_insns ? -1 : 0;
    } else if (KEY("vcpus")) {
        return parse_vcpus(v, &mt_cfg.vcpu_mask);
    } else if (KEY("buffers")) {
        mt_cfg.nbuffers = (unsigned)strtoul(v, &end, 10);
        return *end || mt_cfg.nbuffers < 2 ? -1 : 0;
    } else if (KEY("buffer_events")) {
        mt_cfg.buffer_events = (unsigned)strtoul(v, &end, 10);
        return *end || mt_cfg.buffer_events < 64 ? -1 : 0;
    } else if (KEY("zstd")) {
        mt_cfg.zstd_level = (int)strtol(v, &end, 10);
        return *end || mt_cfg.zstd_level > 19 || mt_cfg.zstd_level < -7 ? -1 : 0;
    } else {
        return mt_ring_arg(arg, klen, v) == 0 ? 0 : -1;
    }
#undef KEY
    return 0;
}

static const char *addr_name(void)
{
    return mt_cfg.addr == MT_ADDR_BOTH ? "both" : mt_cfg.addr == MT_ADDR_VIRTUAL ? "virtual" : "physical";
}

MT_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (parse_arg(argv[i]) != 0) {
            fprintf(stderr, "memtap: bad plugin argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!info->system_emulation) {
        fprintf(stderr, "memtap: only QEMU system emulators are supported\n");
        return -1;
    }
    if (mt_cfg.sink == MT_SINK_FILE && !mt_cfg.out) {
        fprintf(stderr, "memtap: no output file (out=PATH)\n");
        return -1;
    }
    if (mt_cfg.counts && (mt_ring_enabled || mt_cfg.start_on_marker || mt_cfg.max_insns ||
                          mt_cfg.events != MT_TRACE_ALL ||
                          mt_cfg.vcpu_mask != ~0ull || mt_cfg.sink != MT_SINK_FILE)) {
        fprintf(stderr, "memtap: counts mode counts every vCPU's whole run into a file; it takes no event, "
                        "vCPU, marker, instruction-limit or ring options\n");
        return -1;
    }
    snprintf(target, sizeof(target), "%s", info->target_name);
    api_version = info->version.cur;
    if (mt_arch_init(target) != 0) {
        fprintf(stderr, "memtap: note: no privilege decoding or markers for target %s\n", target);
    }
    mt_decode_init();   /* an unknown target decodes nothing: every instruction is plain */
    mt_mmu_init();
    mt_exc_init();
    vectors_known = mt_exc_vectors_known();
    mt_max_vcpus = (unsigned)(info->system.max_vcpus > 0 ? info->system.max_vcpus : 1);
    mt_smp = mt_max_vcpus > 1;
    mt_vcpus = aligned_alloc(64, mt_max_vcpus * sizeof(struct mt_vcpu));
    progress = qemu_plugin_scoreboard_new(sizeof(struct mt_slot));
    data_only = !(mt_cfg.events & MT_TRACE_FETCH) && !mt_cfg.max_insns;
    if (!mt_vcpus || !progress) {
        return -1;
    }
    memset(mt_vcpus, 0, mt_max_vcpus * sizeof(struct mt_vcpu));
    discon = !mt_cfg.counts && mt_exc_discon_register(id, on_discon);
    unsigned nbuf = mt_cfg.nbuffers ? mt_cfg.nbuffers : 2 * mt_max_vcpus + 4;
    if (nbuf <= mt_max_vcpus) {
        nbuf = mt_max_vcpus + 1;   /* every vCPU holds one; the sink needs at least one more to make progress */
    }
    if (mt_buffers_init(nbuf, mt_cfg.buffer_events) != 0) {
        fprintf(stderr, "memtap: out of memory for %u buffers\n", nbuf);
        return -1;
    }
    mt_control_init();

    char events[40] = "";
    static const char *names[] = {"fetch", "load", "store"};
    for (unsigned k = 0; k < 3; k++) {
        if (mt_cfg.events & (1u << k)) {
            size_t len = strlen(events);
            snprintf(events + len, sizeof(events) - len, "%s\"%s\"", len ? ", " : "", names[k]);
        }
    }
    char info_json[1024];
    snprintf(info_json, sizeof(info_json),
             "{\"target\": \"%s\", \"api_version\": %d, \"smp_vcpus\": %d, \"max_vcpus\": %d, "
             "\"events\": [%s], \"addresses\": \"%s\", \"fetch_paddr\": \"%s\", \"start_on_marker\": %s, "
             "\"max_insns\": %" PRIu64 ", \"vcpu_mask\": %" PRIu64 ", \"buffer_events\": %u, \"buffers\": %u, "
             "\"zstd_level\": %d, \"sink\": \"%s\", \"mode\": \"%s\", \"values\": %s, \"exceptions\": \"%s\"}",
             target, api_version, info->system.smp_vcpus, info->system.max_vcpus, events, addr_name(),
             mt_mmu_translates() && (mt_cfg.addr & MT_ADDR_PHYSICAL) ? "translated" : "untranslated",
             mt_cfg.start_on_marker ? "true" : "false", mt_cfg.max_insns, mt_cfg.vcpu_mask, mt_cfg.buffer_events,
             nbuf, mt_cfg.zstd_level, mt_cfg.sink == MT_SINK_FILE ? "file" : "null",
             mt_cfg.counts ? "counts" : "records", mt_cfg.values ? "true" : "false",
             discon ? "discontinuity" : vectors_known ? "vector" : "early-exit");
    if (mt_sink_open(info_json) != 0 || (mt_cfg.counts && mt_counts_start() != 0) ||
        (mt_ring_enabled && mt_ring_open() != 0)) {
        return -1;
    }
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_flush_cb(id, on_flush);
    qemu_plugin_register_vcpu_exit_cb(id, on_vcpu_exit);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
