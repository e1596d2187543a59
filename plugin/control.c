/* Control: what is traced right now, the global record order, the instruction budget, and guest markers.
 *
 * Fetch records are produced lazily: a vCPU accounts for the instructions of its current block when something
 * needs them in order (a data access, a marker, the next block). That keeps the per-instruction cost to one
 * inline store (see hooks.c) and still yields exactly one fetch record per started instruction. */
#include <time.h>

#include "memtap_plugin.h"

#include "../guest/include/memtap.h"

MT_LOCAL _Atomic unsigned mt_trace_on;
MT_LOCAL _Atomic bool mt_mark_pending;
static _Atomic uint64_t mark_value;
MT_LOCAL _Atomic uint64_t mt_next_pos;
static _Atomic uint64_t insns_left;   /* remaining --max-insns budget; unused when max_insns is 0 */

/* Takes up to n instructions from the --max-insns budget and returns how many may be traced; when the budget
 * runs out, tracing stops for every vCPU. */
uint32_t mt_budget(uint32_t n)
{
    uint64_t left = atomic_load_explicit(&insns_left, memory_order_relaxed);
    uint64_t take;
    do {
        take = left < n ? left : n;
    } while (take && !atomic_compare_exchange_weak_explicit(&insns_left, &left, left - take,
                                                            memory_order_relaxed, memory_order_relaxed));
    if (take == left) {
        atomic_store_explicit(&mt_trace_on, 0, memory_order_relaxed);
    }
    return (uint32_t)take;
}

void mt_control_init(void)
{
    atomic_store(&insns_left, mt_cfg.max_insns);
    atomic_store(&mt_trace_on, mt_cfg.start_on_marker ? 0u : mt_cfg.events);
}

/* Accounts for instructions [v->done, upto) and emits their fetches as one EXEC event. */
void mt_account(struct mt_vcpu *v, uint32_t upto)
{
    struct mt_run_pending run;
    mt_account_pending(v, upto, &run);
    mt_emit_exec(v, run.first_id, run.first_icount, run.n);
}

void mt_emit_mark(struct mt_vcpu *v, const struct mt_insn_info *ii, uint64_t value)
{
    mt_emit(v, MEMTAP_EV_MARK, 0, 1, ii->id, v->icount, mt_take_pos(1), value, value);
    v->records[3]++;
}

/* Runs before a marker instruction executes. START and STOP markers produce no record of their own. */
void mt_marker(struct mt_vcpu *v, const struct mt_insn_info *ii)
{
    if (ii->idx > v->done) {
        mt_account(v, ii->idx);
    }
    if (ii->marker_op == MT_MARKER_MARK) {
        mt_account(v, ii->idx + 1);
        if (v->insn_on) {
            mt_emit_mark(v, ii, ii->marker_arg);
        }
        return;
    }
    /* The marker itself is started but not traced. */
    v->icount += (uint32_t)(ii->idx + 1) - v->done;
    v->done = ii->idx + 1;
    v->insn_on = 0;
    unsigned sel = mt_cfg.events;
    switch (ii->marker_op) {
    case MEMTAP_OP_START:
        atomic_fetch_or(&mt_trace_on, sel);
        break;
    case MEMTAP_OP_STOP:
        atomic_store(&mt_trace_on, 0);
        break;
    case MEMTAP_OP_START_DATA:
        atomic_fetch_or(&mt_trace_on, sel & MT_TRACE_DATA);
        break;
    case MEMTAP_OP_STOP_DATA:
        atomic_fetch_and(&mt_trace_on, ~MT_TRACE_DATA);
        break;
    case MEMTAP_OP_START_FETCH:
        atomic_fetch_or(&mt_trace_on, sel & MT_TRACE_FETCH);
        break;
    case MEMTAP_OP_STOP_FETCH:
        atomic_fetch_and(&mt_trace_on, ~MT_TRACE_FETCH);
        break;
    default:
        break;
    }
    if (mt_cfg.max_insns && atomic_load(&insns_left) == 0) {
        atomic_store(&mt_trace_on, 0);   /* an exhausted budget is final */
    }
}

/* A control-channel marker lands on the first traced vCPU to enter a block while tracing is on: pc is that
 * block's first instruction, icount the instructions the vCPU completed before it. */
void mt_take_mark(struct mt_vcpu *v, const struct mt_insn_info *ii)
{
    if (v->traced && atomic_load_explicit(&mt_trace_on, memory_order_relaxed) &&
        atomic_exchange(&mt_mark_pending, false)) {
        mt_emit_mark(v, ii, atomic_load(&mark_value));
    }
}

/* Places a marker and waits (at most a second) until a vCPU has taken it. */
static unsigned command_mark(uint64_t value)
{
    if (!atomic_load(&mt_trace_on)) {
        return MEMTAP_RING_ERR_OFF;
    }
    atomic_store(&mark_value, value);
    atomic_store(&mt_mark_pending, true);
    for (int waited = 0; waited < 1000 && atomic_load(&mt_mark_pending); waited++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    /* Withdraw it if still pending: a marker that lands later than its command returned would mislead. */
    return atomic_exchange(&mt_mark_pending, false) ? MEMTAP_RING_ERR_BUSY : MEMTAP_RING_OK;
}

/* Run-time control from the ring's control channel (ring.c); a spent --max-insns budget stays final. */
unsigned mt_control_command(unsigned cmd, uint64_t arg)
{
    switch (cmd) {
    case MEMTAP_RING_CMD_START:
        if (mt_cfg.max_insns && atomic_load(&insns_left) == 0) {
            return MEMTAP_RING_ERR_BUDGET;
        }
        atomic_fetch_or(&mt_trace_on, mt_cfg.events);
        return MEMTAP_RING_OK;
    case MEMTAP_RING_CMD_STOP:
        atomic_store(&mt_trace_on, 0);
        return MEMTAP_RING_OK;
    case MEMTAP_RING_CMD_MARK:
        return command_mark(arg);
    default:
        return MEMTAP_RING_ERR_COMMAND;
    }
}
