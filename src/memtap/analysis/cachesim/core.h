/* memtap cache-hierarchy simulator: the native core, called from Python through ctypes.
 *
 * The Python side (memtap/cachesim/native.py) mirrors these structures; op codes and counter names are read
 * from ms_op_names() and ms_counter_names() so the two cannot drift apart.
 */
#ifndef MEMTAP_CACHESIM_CORE_H
#define MEMTAP_CACHESIM_CORE_H

#include <stddef.h>
#include <stdint.h>

/* What one input item does to the model. Records map to these through a kind -> op table. */
enum ms_op {
    MS_OP_NONE,      /* ignored */
    MS_OP_FETCH,     /* instruction fetch */
    MS_OP_LOAD,
    MS_OP_STORE,
    MS_OP_MARKER,    /* addr carries the marker value */
    MS_OP_UNCACHED,  /* IO or uncached access: bypasses every cache */
    MS_OP_PREFETCH,  /* fill the data side like a load, counted apart from demand accesses */
    MS_OP_ZERO,      /* zero whole lines (DC ZVA): allocate dirty in the first data level without a fetch */
    MS_OP_CLEAN,     /* write back the line if dirty, everywhere, keep it */
    MS_OP_INVAL,     /* drop the line everywhere without writing it back */
    MS_OP_FLUSH,     /* clean, then invalidate */
    MS_OP_CLEAN_ALL, /* the same three for every line of every cache the vCPU reaches */
    MS_OP_INVAL_ALL,
    MS_OP_FLUSH_ALL,
    MS_NOPS
};

enum ms_repl { MS_LRU, MS_FIFO, MS_RANDOM, MS_PLRU };
enum ms_side { MS_UNIFIED, MS_INSTRUCTION, MS_DATA };

/* Origins of the accesses a level counts: the core's fetch/load/store, and fills caused by write-backs. */
enum ms_kind { MS_K_FETCH, MS_K_LOAD, MS_K_STORE, MS_K_WBFILL, MS_NKINDS };

struct ms_level_cfg {
    uint64_t sets;
    uint32_t ways;
    uint32_t line;
    uint8_t repl;           /* enum ms_repl */
    uint8_t write_back;     /* 0: write-through */
    uint8_t write_allocate;
    uint8_t inclusive;      /* evicting a line here back-invalidates it above */
    uint8_t shared;         /* one instance for all vCPUs; otherwise one per vCPU */
    uint8_t side;           /* enum ms_side */
    uint8_t reserved[2];
};

struct ms_options {
    uint64_t seed;          /* random replacement */
    int64_t reset_marker;   /* a marker with this value zeroes the statistics; -1: none */
    uint32_t range_bits;    /* per-range misses: log2 of the range size */
    uint8_t split_lines;    /* 1: a line-crossing access counts once per line; 0: once */
    uint8_t compat;         /* 1: pycachesim semantics (see docs/cachesim.md) */
    uint8_t classify;       /* 1: compulsory/capacity/conflict via the seen-set and a fully-associative shadow */
    uint8_t track;          /* 1: per-PC and per-range miss maps */
};

/* One op of the direct input (tests, future record kinds). */
struct ms_input {
    uint64_t addr;
    uint64_t pc;
    uint32_t size;
    uint16_t vcpu;
    uint8_t op;
    uint8_t reserved;
};

/* One input column: values `stride` bytes apart (a numpy array's stride: its itemsize for a decoded column,
 * the record size for a field of memtap.layout.RECORD records). data NULL: the column is absent and reads as 0. */
struct ms_column {
    const void *data;
    size_t stride;
};

/* The record fields the core reads, as columns (memtap.layout.RECORD's names and types). */
struct ms_columns {
    struct ms_column kind;  /* u8 */
    struct ms_column vcpu;  /* u16 */
    struct ms_column size;  /* u8 */
    struct ms_column flags; /* u8: RF_IO, RF_PADDR, RF_NOADDR */
    struct ms_column vaddr; /* u64 */
    struct ms_column paddr; /* u64: only read with use_paddr */
    struct ms_column pc;    /* u64: only for the miss maps */
    struct ms_column value; /* u64: a marker's value, a cache operation's code */
};

#define MS_RF_IO 0x01
#define MS_RF_PADDR 0x02
#define MS_RF_NOADDR 0x40

/* The trace's cache-maintenance records (trace.h MEMTAP_KIND_CMO, enum memtap_cmo_op, memtap_cmo_granularity). */
#define MS_KIND_CMO 4
enum { MS_CMO_CLEAN = 1, MS_CMO_INVALIDATE, MS_CMO_FLUSH, MS_CMO_ZERO, MS_CMO_PREFETCH_READ, MS_CMO_PREFETCH_WRITE };
enum { MS_CMO_LINE = 0, MS_CMO_SET_WAY = 1, MS_CMO_WHOLE = 2 };

/* One read or write of main memory (a miss of the last level, a write-back, a written-through store), and the
 * index of the input item that caused it: its row in ms_run_columns' columns, its place in ms_run_inputs' ops. */
struct ms_memop {
    uint64_t addr;
    uint64_t index;
    uint16_t vcpu;
    uint8_t write;
    uint8_t reserved[5];
};

struct ms_sim;

struct ms_sim *ms_new(const struct ms_level_cfg *levels, int nlevels, const struct ms_options *opt);
void ms_free(struct ms_sim *s);
/* Make room for vCPUs 0..n-1 (private instances are created as vCPUs appear). 0 on success. */
int ms_ensure_vcpus(struct ms_sim *s, int n);
/* Records [first, n) of the columns in order; kind_to_op maps record kinds to ops; use_paddr picks paddr where the
 * record has one. Returns the index of the first record not simulated: n, or a record whose vCPU has no caches
 * yet (ms_ensure_vcpus, then call again from there). */
size_t ms_run_columns(struct ms_sim *s, const struct ms_columns *cols, size_t first, size_t n,
                      const uint8_t *kind_to_op, int use_paddr);
/* Direct ops; returns how many were simulated (fewer than n as above). */
size_t ms_run_inputs(struct ms_sim *s, const struct ms_input *in, size_t n);
/* Counters of level (nlevels = main memory) as seen from vcpu; NULL when out of range. */
const uint64_t *ms_counters(const struct ms_sim *s, int level, int vcpu);
const uint64_t *ms_op_counts(const struct ms_sim *s, int vcpu);
/* Miss maps (which 0: per PC, 1: per range): number of entries, and rows of (key, fetch, load, store). */
size_t ms_map_size(const struct ms_sim *s, int level, int which);
size_t ms_map_export(const struct ms_sim *s, int level, int which, uint64_t *out, size_t cap);
/* Whether a line is valid in level's instance for vcpu, and its MESI state (0 I, 1 S, 2 E, 3 M). */
int ms_probe(const struct ms_sim *s, int level, int vcpu, uint64_t addr);
/* Logging of main-memory operations (off by default): the log grows until taken; ms_log_size is (size_t)-1
 * when it could not grow. */
void ms_log_enable(struct ms_sim *s, int on);
size_t ms_log_size(const struct ms_sim *s);
size_t ms_log_take(struct ms_sim *s, struct ms_memop *out, size_t cap);
const char *ms_op_names(void);
const char *ms_counter_names(void);

#endif
