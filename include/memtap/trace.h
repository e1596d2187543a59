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
#define MEMTAP_FORMAT_VERSION 1u
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

/* One translated instruction. Ids are global, dense and increasing: a translation block's instructions have
 * consecutive ids. The same guest instruction translated twice gets two ids. */
struct memtap_insn {
    uint64_t vaddr;
    uint32_t id;
    uint8_t size;             /* bytes */
    uint8_t priv;             /* enum memtap_priv, constant for the block that holds the instruction */
    uint8_t flags;            /* MEMTAP_INSN_* */
    uint8_t reserved;
};

/* Raw event kinds. One event expands to one or more records. */
enum memtap_event_kind {
    MEMTAP_EV_EXEC = 1,       /* `count` instructions fetched, ids insn .. insn+count-1, positions pos .. */
    MEMTAP_EV_DATA = 2,       /* one load or store by instruction `insn` */
    MEMTAP_EV_MARK = 3,       /* a MEMTAP_MARK(n) marker executed by instruction `insn`; n in vaddr */
};

/* Event flags (DATA). */
#define MEMTAP_EVF_SIZE_MASK 0x07u    /* log2 of the access size in bytes */
#define MEMTAP_EVF_STORE 0x08u
#define MEMTAP_EVF_IO 0x10u           /* MMIO, not RAM */
#define MEMTAP_EVF_PADDR 0x20u        /* paddr is valid */
#define MEMTAP_EVF_SIGNED 0x40u       /* sign-extended load */
#define MEMTAP_EVF_BIG_ENDIAN 0x80u

/* One event, logically (40 bytes, no padding); readers decode chunks to this layout.
 *
 * In an EVENTS chunk the n events are stored as columns, one after the other, which compresses several times
 * better than rows, is what the plugin's buffers hold, and decodes without a loop:
 *   kind[n] u8 | flags[n] u8 | count[n] u16 | insn[n] u32 | icount_d[n] u16 | pos_d[n] u16 |
 *   vaddr[m] u64 | paddr[m] u64 | icount_wide[wi] u64 | pos_wide[wp] u64
 * m is the number of events whose kind is not EXEC; paddr holds paddr - vaddr (modulo 2^64). icount_d and pos_d
 * are differences (modulo 2^64) to the last record the previous event covered: for an EXEC event its last
 * instruction (icount + count - 1, pos + count - 1), for others the event itself, and 0 before the first event
 * of the chunk. A difference of MEMTAP_WIDE or more is stored as MEMTAP_WIDE and its value taken, in order, from
 * the wide column; wi and wp count those escapes. */
#define MEMTAP_WIDE 0xffffu

struct memtap_event {
    uint64_t vaddr;           /* DATA: virtual address; MARK: marker value */
    uint64_t paddr;           /* DATA: physical address when MEMTAP_EVF_PADDR */
    uint64_t icount;          /* the vCPU's count of executed instructions, including the (first) one here */
    uint64_t pos;             /* global position of the (first) record: one order over all vCPUs */
    uint32_t insn;            /* instruction id (EXEC: the first of the run) */
    uint8_t kind;             /* enum memtap_event_kind */
    uint8_t flags;            /* MEMTAP_EVF_* */
    uint16_t count;           /* EXEC: instructions in the run; otherwise 1 */
};

#endif /* MEMTAP_TRACE_H */
