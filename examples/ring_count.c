/* ring_count: a minimal co-simulator on memtap's live ring. It counts the accesses it receives by kind (a fetch
 * run counts as the fetches it stands for) and, when the recording ends, prints them with the ring records it
 * lost (lossy mode) and where it joined the stream.
 *
 *     cc -Wall -Wextra -Werror -O2 -pthread -I include examples/ring_count.c -o ring_count
 *     memtap record --ring demo --ring-wait 1 -o run.trace -- qemu-system-riscv64 ... &
 *     ./ring_count demo
 *
 * Output, one "key value" per line: fetch, load, store, marker, cmo, exception, lost, joined_seq, first_pos. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "memtap/ring_client.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ring_count RING_NAME\n");
        return 2;
    }
    struct memtap_ring_client c;
    if (memtap_ring_connect(&c, argv[1], 10.0) != 0) {
        fprintf(stderr, "ring_count: %s\n", c.error);
        return 1;
    }
    static const char *const kinds[] = {"fetch", "load", "store", "marker", "cmo", "exception"};   /* MEMTAP_KIND_* */
    enum { NKINDS = sizeof(kinds) / sizeof(kinds[0]) };
    uint64_t counts[NKINDS] = {0}, other = 0, first_pos = UINT64_MAX;
    const struct memtap_record *r;
    uint32_t n;
    while ((r = memtap_ring_next(&c, &n))) {
        if (n && first_pos == UINT64_MAX) {
            first_pos = r[0].pos - r[0].fetches;   /* a run load/store: its first fetch's */
        }
        for (uint32_t i = 0; i < n; i++) {
            if (r[i].kind == MEMTAP_KIND_FETCH_RUN) {
                counts[MEMTAP_KIND_FETCH] += r[i].size;
            } else if (r[i].kind == MEMTAP_KIND_RUN_LOAD || r[i].kind == MEMTAP_KIND_RUN_STORE) {
                counts[MEMTAP_KIND_FETCH] += r[i].fetches;
                counts[r[i].kind == MEMTAP_KIND_RUN_LOAD ? MEMTAP_KIND_LOAD : MEMTAP_KIND_STORE]++;
            } else if (r[i].kind < NKINDS) {
                counts[r[i].kind]++;
            } else {
                other++;   /* a kind newer than this program */
            }
        }
    }
    int status = 0;
    if (c.error[0]) {
        fprintf(stderr, "ring_count: %s\n", c.error);
        status = 1;
    } else if (!c.complete) {
        fprintf(stderr, "ring_count: the recording stopped without ending the stream (QEMU killed?)\n");
        status = 1;
    }
    for (int k = 0; k < NKINDS; k++) {
        printf("%s %" PRIu64 "\n", kinds[k], counts[k]);
    }
    if (other) {
        printf("other %" PRIu64 "\n", other);
    }
    printf("lost %" PRIu64 "\njoined_seq %" PRIu64 "\nfirst_pos %" PRIu64 "\n", memtap_ring_lost(&c), c.joined_seq,
           first_pos);
    memtap_ring_close(&c);
    return status;
}
