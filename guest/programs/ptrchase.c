/* ptrchase benchmark: follow a random cyclic permutation (Sattolo) over NODES linked nodes, REPEAT rounds. */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 48
#endif
#define NODES (1u << 17)

struct node {
    struct node *next;
    uint64_t value;
};

static struct node nodes[NODES];
static uint32_t perm[NODES];

int main(void)
{
    uint32_t seed = 12345;
    for (uint32_t i = 0; i < NODES; i++)
        perm[i] = i;
    for (uint32_t i = NODES - 1; i > 0; i--) { /* Sattolo: one single cycle */
        uint32_t j = bench_lcg(&seed) % i;
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < NODES; i++) {
        nodes[i].next = &nodes[perm[i]];
        nodes[i].value = i;
    }

    MEMTAP_START();
    struct node *p = &nodes[0];
    uint64_t sum = 0;
    for (uint32_t r = 0; r < REPEAT; r++)
        for (uint32_t i = 0; i < NODES; i++) {
            sum += p->value;
            p = p->next;
        }
    MEMTAP_STOP();

    bench_report("ptrchase", sum + (uint64_t)(p - nodes));
    return 0;
}
