/* memtap export core: the per-record work of the simulator and timeline formats, called from Python through
 * ctypes on whole batches of columns (src/memtap/export/native.py mirrors these structures).
 *
 * Each writer appends one batch's output to a caller-sized buffer and returns the bytes written; what a format
 * cannot hold is counted in drops[] by reason (enum mx_drop), never written.
 */
#ifndef MEMTAP_EXPORT_CORE_H
#define MEMTAP_EXPORT_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Record kinds and flags (include/memtap/trace.h: MEMTAP_KIND_*, memtap_record flags). */
enum { MX_FETCH, MX_LOAD, MX_STORE, MX_MARKER, MX_CMO, MX_EXCEPTION };
#define MX_RF_IO 0x01
#define MX_RF_PADDR 0x02
#define MX_RF_NOADDR 0x40

/* Cache operations (trace.h enum memtap_cmo_op, granularity in bits 4-5 of the record's value). */
enum { MX_CMO_CLEAN = 1, MX_CMO_INVALIDATE, MX_CMO_FLUSH, MX_CMO_ZERO, MX_CMO_PREFETCH_READ,
       MX_CMO_PREFETCH_WRITE, MX_CMO_PREFETCH_INSN, MX_CMO_LOCK, MX_CMO_UNLOCK, MX_CMO_ICACHE_INVALIDATE };
enum { MX_CMO_LINE, MX_CMO_SET_WAY, MX_CMO_WHOLE };

/* Why a record (or part of one) was not written. */
enum mx_drop {
    MX_DROP_MARKER,      /* the format has no markers */
    MX_DROP_EXCEPTION,   /* ... no exceptions */
    MX_DROP_CMO,         /* ... no label for this cache operation */
    MX_DROP_NO_PADDR,    /* physical addresses asked for, the record has none */
    MX_DROP_WIDE_ADDR,   /* the address does not fit the format */
    MX_DROP_ZERO_ADDR,   /* address 0 means "no operand" in the format */
    MX_DROP_MEMOPS,      /* more memory operands than the format's slots for one instruction */
    MX_DROP_ORPHAN,      /* an access whose instruction's fetch is not in the selection */
    MX_NDROPS
};

/* One batch of records as columns; a writer reads only those it needs (the others may be NULL). */
struct mx_cols {
    const uint64_t *addr;    /* vaddr or paddr, as the caller chose */
    const uint64_t *time;    /* icount or pos, as the caller chose */
    const uint64_t *pc;
    const uint64_t *value;
    const uint8_t *kind;
    const uint8_t *size;
    const uint8_t *flags;
    const uint16_t *vcpu;
    uint64_t n;
    int32_t physical;        /* addr is paddr: records without MX_RF_PADDR have none */
    uint32_t addr_bits;      /* widest address the format holds (64: any) */
};

/* --- text formats ------------------------------------------------------------------------------------------- */

struct mx_lackey_state {     /* a load held back: it becomes an M line if its instruction's store follows */
    uint64_t addr, time, pc;
    uint32_t size, vcpu;
    int32_t pending, reserved;
};

size_t mx_lackey(const struct mx_cols *c, struct mx_lackey_state *st, int final, char *out, uint64_t *drops);
size_t mx_dinero(const struct mx_cols *c, uint32_t line, char *out, uint64_t *drops);
size_t mx_dramsim3(const struct mx_cols *c, char *out, uint64_t *drops);
size_t mx_ramulator(const struct mx_cols *c, char *out, uint64_t *drops);
size_t mx_gem5(const struct mx_cols *c, uint64_t ticks_per_unit, char *out, uint64_t *drops);

/* --- records for the cache simulator ------------------------------------------------------------------------ */

/* memtap_record (include/memtap/trace.h, layout.RECORD): the fields the cache simulator reads, at their offsets. */
struct mx_record {
    uint64_t pos, icount, vaddr, paddr, pc, value;
    uint16_t vcpu;
    uint8_t kind, size, priv, flags;
    uint16_t fetches;
    uint64_t value_hi;
};
_Static_assert(sizeof(struct mx_record) == 64, "memtap_record is 64 bytes");

/* Fills records from columns: vaddr, paddr, pc, value, vcpu, kind, size and flags (the others zero). */
void mx_records(const struct mx_cols *c, const uint64_t *vaddr, const uint64_t *paddr, struct mx_record *out);

/* --- instructions by address -------------------------------------------------------------------------------- */

/* What the exporters know about one instruction address: `info` packs ChampSim's register bytes and the branch
 * class (MX_INFO_*), `func` the index of the function that starts there (-1: none). */
struct mx_pcmap;
#define MX_INFO_REGS(info) ((info) & 0xffffffffffffULL) /* bytes 0-1 destinations, 2-5 sources */
#define MX_INFO_CLASS(info) (((info) >> 48) & 0xff)
enum { MX_NOT_BRANCH, MX_COND, MX_JUMP, MX_JUMP_INDIRECT, MX_CALL, MX_CALL_INDIRECT, MX_RETURN, MX_BRANCH_OTHER };

struct mx_pcmap *mx_pcmap_new(void);
void mx_pcmap_free(struct mx_pcmap *m);
int mx_pcmap_put(struct mx_pcmap *m, uint64_t pc, uint64_t info, int32_t func);
/* Writes each pc's slot to idx (-1: unknown) and the unknown pcs, once each, to missing; returns their count.
 * With kind, only fetch records are looked up (the others get -1). */
size_t mx_pcmap_find(struct mx_pcmap *m, const uint64_t *pcs, const uint8_t *kind, size_t n, int64_t *idx,
                     uint64_t *missing);

/* --- ChampSim input_instr ---------------------------------------------------------------------------------- */

struct mx_champsim_instr {     /* ChampSim's inc/trace_instruction.h input_instr: 64 bytes, no padding */
    uint64_t ip;
    uint8_t is_branch, branch_taken;
    uint8_t destination_registers[2];
    uint8_t source_registers[4];
    uint64_t destination_memory[2];
    uint64_t source_memory[4];
};
_Static_assert(sizeof(struct mx_champsim_instr) == 64, "input_instr is 64 bytes");

struct mx_champsim_state {       /* one vCPU: the instruction being filled, written when the next one starts */
    struct mx_champsim_instr cur;
    uint64_t next_pc;            /* cur.ip + its size: a taken branch goes elsewhere */
    int32_t pending;
    int32_t nsrc, ndst;
};

/* Records of one vCPU in program order; idx[] from mx_pcmap_find on their pcs. */
size_t mx_champsim(const struct mx_cols *c, const int64_t *idx, const struct mx_pcmap *m,
                   struct mx_champsim_state *st, int final, struct mx_champsim_instr *out, uint64_t *drops);

/* --- function calls and returns ----------------------------------------------------------------------------- */

struct mx_call_event {
    uint64_t time;
    uint64_t addr;       /* the function's first instruction */
    int32_t func;
    uint16_t depth;      /* 0 for the outermost function seen */
    uint8_t type;        /* 0 entry, 1 exit */
    uint8_t reserved;
};

struct mx_calls_state;   /* one vCPU: its stack of (function, return address) and its previous instruction */
struct mx_calls_state *mx_calls_new(void);
void mx_calls_free(struct mx_calls_state *s);
uint64_t mx_calls_depth(const struct mx_calls_state *s);
/* Fetch records of one vCPU in program order (the other kinds are skipped). Writes at most n + depth events. */
size_t mx_calls(const struct mx_cols *c, const int64_t *idx, const struct mx_pcmap *m, struct mx_calls_state *s,
                struct mx_call_event *out, size_t cap);
/* Exit events for every open frame at time t (the end of the selection). */
size_t mx_calls_close(struct mx_calls_state *s, uint64_t t, struct mx_call_event *out, size_t cap);

/* Chrome trace-event "B"/"E" lines for call events; names[func] at name_off[func] in a NUL-separated blob. */
size_t mx_chrome_calls(const struct mx_call_event *ev, size_t n, const char *blob, const uint64_t *name_off,
                       uint32_t pid, uint32_t tid, char *out);

#endif
