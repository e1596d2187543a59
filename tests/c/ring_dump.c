/* ring_dump: writes every record of a live ring to stdout as raw struct memtap_record, fetch runs expanded with
 * memtap_ring_expand, so a test can compare the bytes with the trace file's records. Exit 1 on any error. */
#include <stdio.h>

#include "memtap/ring_client.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ring_dump RING_NAME\n");
        return 2;
    }
    struct memtap_ring_client c;
    if (memtap_ring_connect(&c, argv[1], 30.0) != 0) {
        fprintf(stderr, "ring_dump: %s\n", c.error);
        return 1;
    }
    struct memtap_record out[MEMTAP_RUN_MAX];
    const struct memtap_record *r;
    uint32_t n;
    while ((r = memtap_ring_next(&c, &n))) {
        for (uint32_t i = 0; i < n; i++) {
            unsigned k = memtap_ring_expand(&r[i], out);
            if (fwrite(out, sizeof(out[0]), k, stdout) != k) {
                return 1;
            }
        }
    }
    int status = c.error[0] || !c.complete;
    if (status) {
        fprintf(stderr, "ring_dump: %s\n", c.error[0] ? c.error : "the stream did not end normally");
    }
    memtap_ring_close(&c);
    return status;
}
