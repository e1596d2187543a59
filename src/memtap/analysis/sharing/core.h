/* memtap cache-line sharing analysis: the native core, called from Python through ctypes (native.py).
 *
 * Two passes over the same data accesses in global (pos) order. Pass 1 keeps a small entry per line (who
 * touched it first, which vCPUs hold it, who wrote and accessed it last) and applies mtrace's rule of line
 * movement between cores, counting each transfer by the vCPUs it went from and to; it gives
 * every line that more than one vCPU or sharer touches a detail entry. Pass 2 collects, for those lines only
 * (looked up in an index of their own, so the records of other lines cost a miss in a small table),
 * per-offset rows (who read or wrote which bytes, from which pc) and the runs of one vCPU between switches.
 * docs/sharing.md states the rules; native.py mirrors the structures below.
 */
#ifndef MEMTAP_SHARING_CORE_H
#define MEMTAP_SHARING_CORE_H

#include <stddef.h>
#include <stdint.h>

#define SH_MAX_VCPUS 64    /* the holder set of a line is one u64 */
#define SH_RUN_SMALL 65536 /* run lengths below this are counted in an array; longer ones are listed */

/* Line flags (struct sh_detail.flags). */
#define SH_MULTI_VCPU 0x01   /* accessed by more than one vCPU */
#define SH_MULTI_SHARER 0x02 /* accessed by more than one sharer (thread, or vCPU without threads) */
#define SH_WRITTEN 0x04      /* stored to at least once */

/* Record kinds and flags the core reads (memtap.trace.layout). */
#define SH_KIND_LOAD 1
#define SH_KIND_STORE 2
#define SH_RF_IO 0x01
#define SH_RF_PADDR 0x02

/* Totals, in the order of sh_counter_names(). */
enum {
    SH_C_DATA,        /* loads and stores analysed */
    SH_C_IO,          /* MMIO accesses: not cache lines, skipped */
    SH_C_NO_PADDR,    /* keyed by physical address but the record has none: skipped */
    SH_C_PIECES,      /* per-line pieces of the analysed accesses (a line-crossing access is two) */
    SH_C_TRANSFERS,   /* pieces that moved a line between cores (the transfer rule) */
    SH_C_TRANSFER_RECORDS, /* records with at least one such piece */
    SH_C_MOVEMENT_RECORDS, /* records mtrace's movement mode would log (lines start shared by all) */
    SH_NCOUNTERS
};

/* One line that more than one vCPU or sharer touched. */
struct sh_detail {
    uint64_t line;      /* key address >> line shift */
    uint64_t vline;     /* the first virtual address seen in it >> line shift (pass 2) */
    uint64_t transfers; /* pass 1 */
    uint64_t run;       /* pass 2: length of the current run of last_vcpu */
    uint16_t last_vcpu;
    uint8_t flags;      /* SH_MULTI_*, SH_WRITTEN */
    uint8_t aliased;    /* pass 2: seen at more than one virtual line */
    uint32_t reserved;
};

/* Pass 2: how often one sharer on one vCPU read or wrote [offset, offset+len) of a line from one pc. */
struct sh_row {
    uint64_t pc;
    uint64_t count;
    uint32_t detail;    /* index of the line's struct sh_detail */
    uint32_t sharer;    /* dense sharer index (sh_sharers) */
    uint16_t vcpu;
    uint16_t offset;
    uint8_t len;
    uint8_t store;
    uint8_t used;       /* 0: an empty slot of the table */
    uint8_t reserved;
};

struct sh;

/* line_shift: log2 of the line size (3..12). NULL when out of memory or the shift is out of range. */
struct sh *sh_new(unsigned line_shift);
void sh_free(struct sh *s);
/* Pass 1 over n records (columns of equal length). sharer: the sharer identity of each record, NULL for the
 * vCPU. use_paddr: addr is the physical address (records without RF_PADDR are skipped). moved: NULL, or n
 * bytes set to 1 for the records mtrace's movement mode would log, else 0. Returns 0, or -1 when out of
 * memory, -2 when a vCPU index is SH_MAX_VCPUS or more (then *bad_vcpu holds it). */
int sh_pass1(struct sh *s, size_t n, const uint16_t *vcpu, const uint8_t *kind, const uint64_t *addr,
             const uint8_t *size, const uint8_t *flags, const uint64_t *sharer, int use_paddr, uint8_t *moved,
             uint32_t *bad_vcpu);
/* Pass 2 over the same records (its first call ends pass 1 for good: the line table is freed). vaddr and pc
 * may be NULL. Returns 0, or -1 when out of memory. */
int sh_pass2(struct sh *s, size_t n, const uint16_t *vcpu, const uint8_t *kind, const uint64_t *addr,
             const uint64_t *vaddr, const uint8_t *size, const uint8_t *flags, const uint64_t *sharer,
             const uint64_t *pc, int use_paddr);
/* Ends every open run (call once, after the last pass 2 call). 0, or -1 when out of memory. */
int sh_close_runs(struct sh *s);

const uint64_t *sh_counters(const struct sh *s);
/* Transfers by the vCPU the line came from and the vCPU it went to: [from * SH_MAX_VCPUS + to] (pass 1). */
const uint64_t *sh_matrix(const struct sh *s);
const char *sh_counter_names(void);
/* Lines seen, lines with more than one vCPU, lines with more than one sharer. */
void sh_line_counts(const struct sh *s, uint64_t out[3]);
size_t sh_details(const struct sh *s, const struct sh_detail **out);
size_t sh_sharers(const struct sh *s, const uint64_t **out);
/* Copies the used rows into out (capacity cap); returns how many there are. */
size_t sh_rows(const struct sh *s, struct sh_row *out, size_t cap);
/* Run lengths: which 0 = one vCPU's consecutive data accesses over all lines (pass 1), 1 = per multi-vCPU
 * line (pass 2). small[k] counts runs of length k (k < SH_RUN_SMALL); big lists the longer ones. */
void sh_runs(const struct sh *s, int which, const uint64_t **small, const uint64_t **big, size_t *nbig);

#endif
