/* cover: a guest whose executed lines are known, for `memtap coverage` and `memtap profile` tests.
 * Unoptimised (the pragma below makes every function optnone and noinline), so each marked line keeps
 * instructions of its own: main runs 3 rounds of sum_squares(5), sum_squares calls square 5 times per call
 * (15 in all), never_called is never called and the branch to it is never taken. Tests find the lines by the
 * `@name` comments, never by number. Prints `cover: total=90`. */
#include <stdint.h>
#include "platform.h"

#pragma clang optimize off

static volatile uint32_t sink;

static uint32_t square(uint32_t x)
{                                         /* @square-entry */
    return x * x;                         /* @square-body */
}

static void never_called(void)
{                                         /* @never-entry */
    sink = 0xdead;                        /* @never-body */
}

static uint32_t sum_squares(uint32_t n)
{
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++)      /* @loop-head */
        acc += square(i);                 /* @loop-body */
    return acc;
}

int main(void)
{
    uint32_t total = 0;
    for (int round = 0; round < 3; round++)   /* @rounds */
        total += sum_squares(5);              /* @call-sum */
    if (total == 12345u)                      /* @branch */
        never_called();                       /* @never-call */
    sink = total;                             /* @store */
    mt_puts("cover: total=");
    mt_put_dec(total);
    mt_puts("\n");
    return 0;
}
