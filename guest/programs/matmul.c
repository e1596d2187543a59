/* matmul benchmark: C = A * B for 96x96 int32 matrices, REPEAT times (A changes each time). */
#include <stdint.h>
#include "memtap.h"
#include "bench.h"

#ifndef REPEAT
#define REPEAT 200
#endif
#define DIM 96

static int32_t A[DIM][DIM], B[DIM][DIM], C[DIM][DIM];

int main(void)
{
    uint32_t seed = 7;
    uint64_t sum = 0;
    for (int i = 0; i < DIM; i++)
        for (int j = 0; j < DIM; j++) {
            A[i][j] = (int32_t)(bench_lcg(&seed) >> 20);
            B[i][j] = (int32_t)(bench_lcg(&seed) >> 20);
        }

    MEMTAP_START();
    for (int r = 0; r < REPEAT; r++) {
        A[r % DIM][(r * 7) % DIM] += r;
        for (int i = 0; i < DIM; i++)
            for (int j = 0; j < DIM; j++) {
                int32_t acc = 0;
                for (int k = 0; k < DIM; k++)
                    acc += A[i][k] * B[k][j];
                C[i][j] = acc;
            }
        for (int i = 0; i < DIM; i++)
            sum += (uint32_t)C[i][(i + r) % DIM];
    }
    MEMTAP_STOP();

    bench_report("matmul", sum);
    return 0;
}
