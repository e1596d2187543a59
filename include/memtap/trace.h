/*
 * memtap public layouts: the trace file and the raw event stream.
 *
 * One header for every producer and consumer. The Python mirror is memtap/layout.py, and
 * tests/test_layout.py compiles this header and checks that every size, offset and constant agrees.
 *
 * A trace file is:  file header | metadata (JSON) | chunk | chunk | ... | END chunk.
 * Every chunk is self-contained (header + payload, payload checksummed and optionally zstd-compressed),
 * so a file whose writer died reads up to its last whole chunk. Only a file ending in an END chunk is complete.
 */
#ifndef MEMTAP_TRACE_H
#define MEMTAP_TRACE_H

#include <stdint.h>

#define MEMTAP_FILE_MAGIC "MEMTAPv1"      /* 8 bytes, no terminator in the file */
#define MEMTAP_FORMAT_VERSION 2u         /* 2: DATA events carry fetches (count > 1); readers accept 1 */
#define MEMTAP_CHUNK_MAGIC 0x4b43544du    /* "MTCK" little-endian */

/* File header: magic, format version, then meta_len bytes of UTF-8 JSON metadata. All integers little-endian. */
struct memtap_file_header {
    char magic[8];
    uint32_t version;
    uint32_t meta_len;
};

/* Chunk types. */
enum memtap_chunk_type {
    MEMTAP_CHUNK_INFO = 1,    /* JSON: what the plugin learnt from QEMU (target, vCPUs, API version, options) */
    MEMTAP_CHUNK_INSNS = 2,   /* struct memtap_insn[count]: instructions translated since the previous INSNS chunk */
    MEMTAP_CHUNK_EVENTS = 3,  /* `count` events of one vCPU, in its program order, as columns (below) */
    MEMTAP_CHUNK_END = 4,     /* JSON: totals; present only when the writer finished cleanly */
    MEMTAP_CHUNK_COUNTS = 5,  /* struct memtap_count[count] (counts mode): increments since the previous COUNTS */
    MEMTAP_CHUNK_INSN_PADDRS = 6, /* struct memtap_insn_paddr[count]: physical addresses of instructions translated
                                   * since the previous such chunk with MEMTAP_INSN_PADDR (QEMU >= 10.1 only) */
};

enum memtap_codec {
    MEMTAP_CODEC_RAW = 0,
    MEMTAP_CODEC_ZSTD = 1,
};

struct memtap_chunk_header {
    uint32_t magic;           /* MEMTAP_CHUNK_MAGIC */
    uint16_t type;            /* enum memtap_chunk_type */
    uint16_t vcpu;            /* EVENTS: the vCPU index; otherwise 0 */
    uint32_t codec;           /* enum memtap_codec */
    uint32_t crc32;           /* zlib crc32 of the stored payload bytes */
    uint64_t stored_len;      /* payload bytes that follow this header */
    uint64_t raw_len;         /* payload bytes after decompression */
    uint64_t count;           /* items in the payload (events or instructions); 0 for JSON chunks */
    uint64_t seq;             /* chunk sequence number, from 0, in file order */
};

/* Privilege levels, decoded per architecture. */
enum memtap_priv {
    MEMTAP_PRIV_USER = 0,
    MEMTAP_PRIV_SUPERVISOR = 1,   /* kernel: x86 CPL 0, Arm EL1, RISC-V S, PowerPC MSR[PR]=0 */
    MEMTAP_PRIV_HYPERVISOR = 2,   /* Arm EL2, RISC-V HS */
    MEMTAP_PRIV_MACHINE = 3,      /* Arm EL3, RISC-V M */
    MEMTAP_PRIV_UNKNOWN = 0xff,
};

/* Instruction-table flags. */
#define MEMTAP_INSN_MARKER 0x01u  /* the instruction is a memtap guest marker */
#define MEMTAP_INSN_BLOCK 0x02u   /* the instruction starts a translation block */
#define MEMTAP_INSN_ATOMIC 0x04u  /* an atomic read-modify-write (AMO, LSE, lock prefix, xchg with memory) */
#define MEMTAP_INSN_EXCLUSIVE 0x08u /* load-linked or store-conditional (LR/SC, LDXR/STXR, LDREX/STREX, ...) */
#define MEMTAP_INSN_CMO 0x10u     /* a cache-maintenance or prefetch instruction; `cmo` says which */
#define MEMTAP_INSN_PHYS 0x20u    /* fetched with address translation off: its physical address is vaddr */
#define MEMTAP_INSN_PADDR 0x40u   /* its physical address differs from vaddr and is in an INSN_PADDRS chunk */

/* A cache-maintenance instruction's operation, granularity and encoded cache level, packed in memtap_insn.cmo
 * as op | granularity << 4 | level << 6 (level 0: the instruction names none; 1..3: L1..L3). */
enum memtap_cmo_op {
    MEMTAP_CMO_CLEAN = 1,         /* write back dirty data, keep it cached */
    MEMTAP_CMO_INVALIDATE = 2,    /* discard without writing back */
    MEMTAP_CMO_FLUSH = 3,         /* clean and invalidate */
    MEMTAP_CMO_ZERO = 4,          /* allocate and zero a line (dcbz, DC ZVA, cbo.zero) */
    MEMTAP_CMO_PREFETCH_READ = 5,
    MEMTAP_CMO_PREFETCH_WRITE = 6,
    MEMTAP_CMO_PREFETCH_INSN = 7,
    MEMTAP_CMO_LOCK = 8,          /* e500 dcbtls, icbtls, ... */
    MEMTAP_CMO_UNLOCK = 9,        /* e500 dcblc, icblc */
    MEMTAP_CMO_ICACHE_INVALIDATE = 10,
};
enum memtap_cmo_granularity {
    MEMTAP_CMO_LINE = 0,          /* the line holding the effective address */
    MEMTAP_CMO_SET_WAY = 1,       /* one set/way, named by a register value */
    MEMTAP_CMO_WHOLE = 2,         /* the whole cache (wbinvd, fence.i, IC IALLU) */
};
#define MEMTAP_CMO_OP(cmo) ((cmo) & 0xfu)
#define MEMTAP_CMO_GRANULARITY(cmo) (((cmo) >> 4) & 0x3u)
#define MEMTAP_CMO_LEVEL(cmo) (((cmo) >> 6) & 0x3u)

/* One translated instruction. Ids are global, dense and increasing: a translation block's instructions have
 * consecutive ids. The same guest instruction translated twice gets two ids. */
struct memtap_insn {
    uint64_t vaddr;
    uint32_t id;
    uint8_t size;             /* bytes */
    uint8_t priv;             /* enum memtap_priv, constant for the block that holds the instruction */
    uint8_t flags;            /* MEMTAP_INSN_* */
    uint8_t cmo;              /* MEMTAP_INSN_CMO: op | granularity << 4 | level << 6; otherwise 0 */
};

/* The physical address QEMU's MMU gave an instruction's virtual address when it was translated (QEMU >= 10.1).
 * QEMU finds a translation block again only through the same physical page, so it holds for every execution. */
struct memtap_insn_paddr {
    uint32_t id;              /* instruction id (struct memtap_insn), whose flags have MEMTAP_INSN_PADDR */
    uint32_t reserved;
    uint64_t paddr;
};

/* Counts mode (no record order): per translated instruction and vCPU, block entries or completions and the loads
 * and stores it made, added up since the previous COUNTS chunk. A file's totals are the sums over all its COUNTS
 * chunks, so a run that was killed keeps everything up to its last chunk. Only non-zero rows are written. */
struct memtap_count {
    uint32_t insn;            /* instruction id (struct memtap_insn) */
    uint16_t vcpu;
    uint16_t reserved;
    uint64_t executed;        /* times started; counted only for a block's first instruction (the block's entries)
                               * and its last (completions); 0 for the instructions between */
    uint64_t loads;           /* load accesses */
    uint64_t stores;          /* store accesses */
};

/* Raw event kinds. One event expands to one or more records. */
enum memtap_event_kind {
    MEMTAP_EV_EXEC = 1,       /* `count` instructions fetched, ids insn .. insn+count-1, positions pos .. */
    MEMTAP_EV_DATA = 2,       /* one load or store by instruction `insn`, after count - 1 fetches (below) */
    MEMTAP_EV_MARK = 3,       /* a MEMTAP_MARK(n) marker executed by instruction `insn`; n in vaddr */
    MEMTAP_EV_CMO = 4,        /* cache-maintenance instruction `insn` (its memtap_insn.cmo says which); its
                               * effective address (set/way operations: the set/way register) in vaddr */
    MEMTAP_EV_EXCEPTION = 5,  /* an exception or interrupt entered the handler whose first instruction is `insn`;
                               * vaddr: the PC it came from, paddr: the cause (not paddr - vaddr) */
};

/* Event flags (DATA). */
#define MEMTAP_EVF_SIZE_MASK 0x07u    /* log2 of the access size in bytes */
#define MEMTAP_EVF_STORE 0x08u
#define MEMTAP_EVF_IO 0x10u           /* MMIO, not RAM */
#define MEMTAP_EVF_PADDR 0x20u        /* paddr is valid */
#define MEMTAP_EVF_SIGNED 0x40u       /* sign-extended load */
#define MEMTAP_EVF_BIG_ENDIAN 0x80u
/* CMO events use flags differently: */
#define MEMTAP_EVF_CMO_ADDR 0x01u     /* vaddr holds the address computed from registers */
#define MEMTAP_EVF_CMO_LEVEL 0x06u    /* cache level 1..3 read from the set/way register (bits 2:1), 0 if none */
/* ... and EXCEPTION events: */
#define MEMTAP_EVF_EXC_FROM 0x01u     /* vaddr holds the PC the trap came from */
#define MEMTAP_EVF_EXC_CAUSE 0x02u    /* paddr holds the cause (RISC-V xcause, AArch64 ESR_EL1 or 1-3 IRQ/FIQ/SError) */
#define MEMTAP_EVF_EXC_INTERRUPT 0x04u /* asynchronous: an interrupt, not an exception */

/* One event, logically (56 bytes, no padding); readers decode chunks to this layout.
 *
 * In an EVENTS chunk the n events are stored as columns, one after the other, which compresses several times
 * better than rows, is what the plugin's buffers hold, and decodes without a loop:
 *   kind[n] u8 | flags[n] u8 | count[n] u16 | insn[n] u32 | icount_d[n] u16 | pos_d[n] u16 |
 *   vaddr[m] u64 | paddr[m] u64 | icount_wide[wi] u64 | pos_wide[wp] u64
 * m is the number of events whose kind is not EXEC; paddr holds paddr - vaddr (modulo 2^64), 0 for a DATA event
 * without MEMTAP_EVF_PADDR. A DATA event with count c > 1 (format version 2) also carries the c - 1 fetches that
 * end with its own instruction's, which came right before the access: fetch j (0 <= j < c - 1) is instruction
 * insn - (c - 2) + j, icount - (c - 2) + j, at position pos - (c - 1) + j; the access itself has insn, icount
 * and pos, its event's last record. icount_d and pos_d are differences (modulo 2^64) to the last record the previous
 * event covered: for an EXEC event its last instruction (icount + count - 1, pos + count - 1), for others the
 * event itself (a DATA event's access), and 0 before the first event of the chunk. A difference of MEMTAP_WIDE or
 * more is stored as MEMTAP_WIDE and its value taken, in order, from the wide column; wi and wp count those
 * escapes. A trace recorded with values (INFO "values": true) has two more columns at the end: value[m] u64 (the
 * low 8 bytes of a DATA event's value, 0 for other addressed events) and value_hi[h] u64, the high 8 bytes of each
 * 16-byte DATA event, in order. */
#define MEMTAP_WIDE 0xffffu

struct memtap_event {
    uint64_t vaddr;           /* DATA: virtual address; MARK: marker value */
    uint64_t paddr;           /* DATA: physical address when MEMTAP_EVF_PADDR */
    uint64_t icount;          /* the vCPU's count of executed instructions, including the one here (EXEC: the first) */
    uint64_t pos;             /* global position: one order over all vCPUs (EXEC: of the first record) */
    uint32_t insn;            /* instruction id (EXEC: the first of the run) */
    uint8_t kind;             /* enum memtap_event_kind */
    uint8_t flags;            /* MEMTAP_EVF_* */
    uint16_t count;           /* EXEC: instructions in the run; DATA: 1 + fetches before the access; otherwise 1 */
    uint64_t value;           /* DATA with INFO "values": the value loaded or stored (low 8 bytes) */
    uint64_t value_hi;        /* ... and the high 8 bytes of a 16-byte access */
};

/* ---- Decoded records and the live ring (memtap record --ring; docs/ring.md) ---------------------------------
 *
 * A record is one fetch, load, store, marker or cache-maintenance operation, self-contained: readers present records in this layout
 * (layout.RECORD), and the live ring carries them, so a ring client needs no instruction table. */
#define MEMTAP_KIND_FETCH 0u
#define MEMTAP_KIND_LOAD 1u
#define MEMTAP_KIND_STORE 2u
#define MEMTAP_KIND_MARKER 3u
#define MEMTAP_KIND_CMO 4u            /* value: memtap_insn.cmo (op | granularity << 4 | level << 6) */
#define MEMTAP_KIND_EXCEPTION 5u      /* pc: the handler's first instruction; vaddr: where it came from; value: cause */
/* Only in a live ring made with fetch runs (MEMTAP_RING_F_FETCH_RUNS): `size` (1..MEMTAP_RUN_MAX) consecutive
 * fetches of one block in one record. pos, icount, vaddr (= pc) and paddr (with MEMTAP_RF_PADDR) are the first
 * instruction's; fetch k has pos + k, icount + k, and the address plus the sizes of fetches 0..k-1. Instruction
 * sizes are 4-bit fields: fetch k's is MEMTAP_RUN_SIZE(record, k). ring_client.h expands runs into records. */
#define MEMTAP_KIND_FETCH_RUN 6u
#define MEMTAP_RUN_MAX 32u
/* Only in a live ring made with fetch runs and without values: a load (store) record that also carries the
 * `fetches` (1..MEMTAP_FUSED_MAX) fetches ending with its own instruction, which come just before it. All its
 * fields are the access's as in a MEMTAP_KIND_LOAD (STORE) record, but for three: `fetches`; `value`, the fetched
 * instructions' sizes (MEMTAP_RUN_SIZE); `value_hi`, the first fetch's physical address (with
 * MEMTAP_RF_RUN_PADDR). Fetch k has pos - fetches + k, icount - (fetches - 1) + k, and pc minus the sizes of
 * fetches k..fetches-2 as its address. ring_client.h expands them into records. */
#define MEMTAP_KIND_RUN_LOAD 7u
#define MEMTAP_KIND_RUN_STORE 8u
#define MEMTAP_FUSED_MAX 16u
#define MEMTAP_RUN_SIZE(r, k) ((unsigned)((((k) < 16 ? (r)->value : (r)->value_hi) >> (4 * ((k) % 16))) & 0xfu))

#define MEMTAP_RF_IO 0x01u            /* MMIO access */
#define MEMTAP_RF_PADDR 0x02u         /* paddr is valid */
#define MEMTAP_RF_SIGNED 0x04u        /* sign-extended load */
#define MEMTAP_RF_BIG_ENDIAN 0x08u
#define MEMTAP_RF_ATOMIC 0x10u        /* by an atomic read-modify-write instruction */
#define MEMTAP_RF_EXCLUSIVE 0x20u     /* by a load-linked / store-conditional instruction */
#define MEMTAP_RF_NOADDR 0x40u        /* cmo: its address could not be computed */
#define MEMTAP_RF_VALUE 0x80u         /* load/store: value (and value_hi) hold the value moved (--values);
                                       * exception: value holds the cause */
#define MEMTAP_RF_RUN_PADDR 0x40u     /* run load/store records: value_hi holds the first fetch's physical address */
#define MEMTAP_RF_INTERRUPT 0x10u     /* exception records: an interrupt (asynchronous) */

struct memtap_record {
    uint64_t pos;             /* global position: one order over all vCPUs */
    uint64_t icount;          /* the vCPU's executed-instruction count at this record */
    uint64_t vaddr;           /* fetch: pc; load/store: data address; cmo: its address if known; marker: 0 */
    uint64_t paddr;           /* load/store with MEMTAP_RF_PADDR: physical address; otherwise 0 */
    uint64_t pc;              /* the instruction that made the access (marker: the marker instruction) */
    uint64_t value;           /* marker: its n; cmo: memtap_insn.cmo; load/store: the value (--values); else 0 */
    uint16_t vcpu;
    uint8_t kind;             /* MEMTAP_KIND_* */
    uint8_t size;             /* bytes: instruction size (fetch), access size (load/store), 0 (marker) */
    uint8_t priv;             /* enum memtap_priv */
    uint8_t flags;            /* MEMTAP_RF_* */
    uint16_t fetches;         /* MEMTAP_KIND_RUN_LOAD/STORE (live ring): the fetches it carries; else 0 */
    uint64_t value_hi;        /* load/store of 16 bytes with --values: the value's high 8 bytes; else 0 */
};

/* The live ring: one POSIX shared-memory object (mode 0600) laid out as
 *   struct memtap_ring_header | struct memtap_ring_consumer[max_consumers] | struct memtap_ring_buffer[nbuffers] |
 *   (page aligned) struct memtap_record[nbuffers][buffer_records]
 * at the offsets the header gives. The plugin is the only producer: it publishes buffers in sequence (buffer s
 * lives at index s % nbuffers and is valid once write_seq > s) and never reuses a buffer before every attached
 * consumer's read_seq has passed it (lossless) or drops whole buffers instead (MEMTAP_RING_F_LOSSY). Clients
 * claim a consumer slot, heartbeat, and release buffers by advancing read_seq. Counters are updated with atomic
 * operations; 32-bit *_futex words can be waited on with futex(2). */
#define MEMTAP_RING_MAGIC "MEMTAPRG"      /* 8 bytes, no terminator; written last when the segment is ready */
#define MEMTAP_RING_VERSION 2u
#define MEMTAP_RING_MAX_CONSUMERS 16u

#define MEMTAP_RING_F_LOSSY 0x1u          /* drop whole buffers when the ring is full, instead of waiting */
#define MEMTAP_RING_F_FILE 0x2u           /* the same run also writes a trace file */
#define MEMTAP_RING_F_FETCH_RUNS 0x4u     /* fetches come as runs (the default): MEMTAP_KIND_FETCH_RUN records, and
                                           * without values MEMTAP_KIND_RUN_LOAD/STORE records */

#define MEMTAP_RING_ON_FETCH 0x1u         /* trace_on bits: what is being traced right now */
#define MEMTAP_RING_ON_LOAD 0x2u
#define MEMTAP_RING_ON_STORE 0x4u

enum memtap_ring_state {
    MEMTAP_RING_RUNNING = 1,
    MEMTAP_RING_ENDED = 2,    /* recording finished: no buffer follows write_seq */
};

/* Consumer slot states. A client takes a FREE slot (under flock(2) on the segment) as CLAIMING, writes its pid,
 * then sets ATTACHING; the plugin admits it (ATTACHED) from its next buffer. A client leaves with LEAVING. */
enum memtap_ring_slot_state {
    MEMTAP_RING_SLOT_FREE = 0,
    MEMTAP_RING_SLOT_CLAIMING = 1,
    MEMTAP_RING_SLOT_ATTACHING = 2,
    MEMTAP_RING_SLOT_ATTACHED = 3,
    MEMTAP_RING_SLOT_LEAVING = 4,
    MEMTAP_RING_SLOT_DETACHED = 5,    /* by the plugin: see detach_reason */
};

enum memtap_ring_detach_reason {
    MEMTAP_RING_DETACH_GONE = 1,      /* its process no longer exists */
    MEMTAP_RING_DETACH_SILENT = 2,    /* its heartbeat stopped for longer than heartbeat_ms */
    MEMTAP_RING_DETACH_MALFORMED = 3, /* its slot held values no well-behaved client writes */
};

/* Control commands (ctl_cmd) and their results (ctl_result). */
enum memtap_ring_cmd {
    MEMTAP_RING_CMD_START = 1,        /* trace the selected events again */
    MEMTAP_RING_CMD_STOP = 2,         /* trace nothing until START */
    MEMTAP_RING_CMD_MARK = 3,         /* a marker record with value ctl_arg, on the next vCPU to enter a block */
};

enum memtap_ring_result {
    MEMTAP_RING_OK = 0,
    MEMTAP_RING_ERR_COMMAND = 1,      /* unknown command */
    MEMTAP_RING_ERR_BUDGET = 2,       /* START refused: the --max-insns budget is spent */
    MEMTAP_RING_ERR_OFF = 3,          /* MARK refused: tracing is off */
    MEMTAP_RING_ERR_BUSY = 4,         /* MARK refused: no vCPU took the previous marker within a second */
};

struct memtap_ring_header {
    /* Geometry, fixed at creation. */
    char magic[8];
    uint32_t version;                 /* MEMTAP_RING_VERSION: clients refuse any other */
    uint32_t header_size;             /* sizeof(struct memtap_ring_header) */
    uint32_t record_size;             /* sizeof(struct memtap_record) */
    uint32_t nbuffers;
    uint32_t buffer_records;          /* records per buffer */
    uint32_t max_consumers;
    uint64_t consumers_offset;        /* byte offsets in the segment */
    uint64_t buffers_offset;
    uint64_t records_offset;
    uint64_t segment_size;
    uint32_t flags;                   /* MEMTAP_RING_F_* */
    uint32_t producer_pid;            /* QEMU */
    uint32_t heartbeat_ms;            /* a consumer silent this long is detached */
    uint32_t reserved0;
    uint8_t pad0[48];
    /* Written by the plugin when it publishes. */
    uint32_t state;                   /* enum memtap_ring_state */
    uint32_t publish_futex;           /* bumped on every publish and at the end */
    uint64_t write_seq;               /* buffers published */
    uint64_t records_total;           /* records produced into the stream (published, dropped, or unread); this
                                       * and every record count and index below count a fetch run's fetches */
    uint64_t records_published;
    uint64_t records_dropped;         /* lossy mode: records in dropped buffers */
    uint64_t buffers_dropped;
    uint8_t pad1[80];
    /* Written by consumers to wake a waiting producer. */
    uint32_t release_futex;           /* bumped by a consumer that released a buffer */
    uint32_t producer_waiting;        /* nonzero while the plugin waits for a buffer to be released */
    uint8_t pad2[56];
    /* Status, refreshed by the plugin about every 100 ms. */
    uint64_t status_time_ns;          /* CLOCK_MONOTONIC of the last refresh */
    uint64_t start_time_ns;           /* CLOCK_MONOTONIC when the ring was created */
    uint64_t status_records[8];       /* records made so far, by MEMTAP_KIND_* (room for kinds to come) */
    uint64_t status_rate;             /* records per second over the last refresh interval */
    uint64_t status_icount;           /* instructions executed, all vCPUs */
    uint32_t trace_on;                /* MEMTAP_RING_ON_* */
    uint32_t consumers;               /* attached consumers */
    uint8_t pad3[24];
    /* Control: a client (holding flock(2) on the segment) writes ctl_cmd and ctl_arg, then bumps ctl_seq; the
     * plugin answers with ctl_result and sets ctl_ack = ctl_seq. */
    uint32_t ctl_seq;
    uint32_t ctl_cmd;                 /* enum memtap_ring_cmd */
    uint64_t ctl_arg;
    uint32_t ctl_ack;
    uint32_t ctl_result;              /* enum memtap_ring_result */
    uint8_t pad4[40];
};

struct memtap_ring_consumer {
    uint32_t state;                   /* enum memtap_ring_slot_state */
    uint32_t pid;                     /* client */
    uint32_t heartbeat;               /* client: bumped at least every heartbeat_ms / 4 */
    uint32_t generation;              /* plugin: bumped at every admission */
    uint64_t read_seq;                /* client: the next buffer it wants; all before it are released */
    uint64_t joined_seq;              /* plugin: the first buffer this consumer gets */
    uint64_t joined_record;           /* plugin: records_total when it was admitted */
    uint64_t lost;                    /* plugin: records dropped (lossy) while it was attached */
    uint32_t detach_reason;           /* plugin: enum memtap_ring_detach_reason */
    uint32_t reserved;
    uint64_t reserved2;
};

/* Describes the buffer at index seq % nbuffers, written before write_seq passes seq. */
struct memtap_ring_buffer {
    uint64_t seq;
    uint64_t first_record;            /* stream index of its first record; a gap to the previous buffer's end is
                                         records dropped or made while this consumer was not attached */
    uint64_t dropped_before;          /* records_dropped when it was published */
    uint32_t count;                   /* ring records in it (a fetch run is one) */
    uint32_t reserved;
};

#endif /* MEMTAP_TRACE_H */
