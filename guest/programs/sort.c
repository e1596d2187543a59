/* sort benchmark: heapsort of N LCG-filled ints, REPEAT times (refilled each time). */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 40
#endif
#define N 65536

static int32_t a[N];

static void sift_down(int32_t *v, unsigned root, unsigned n)
{
    for (;;) {
        unsigned child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && v[child] < v[child + 1])
            child++;
        if (v[root] >= v[child])
            return;
        int32_t t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

static void heapsort(int32_t *v, unsigned n)
{
    for (unsigned i = n / 2; i-- > 0;)
        sift_down(v, i, n);
    for (unsigned end = n - 1; end > 0; end--) {
        int32_t t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end);
    }
}

int main(void)
{
    uint64_t sum = 0;
    uint32_t seed = 42;

    MEMTAP_START();
    for (int r = 0; r < REPEAT; r++) {
        for (unsigned i = 0; i < N; i++)
            a[i] = (int32_t)bench_lcg(&seed);
        heapsort(a, N);
        for (unsigned i = 0; i < N; i += 257)
            sum = sum * 31 + (uint32_t)a[i];
    }
    MEMTAP_STOP();

    for (unsigned i = 1; i < N; i++)
        if (a[i - 1] > a[i]) {
            mt_puts("sort: not sorted\n");
            return 1;
        }
    bench_report("sort", sum);
    return 0;
}
