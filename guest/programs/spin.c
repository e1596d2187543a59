/* spin: never ends on its own. Each pass of the loop stores to mt_spin_count once, so tests that kill QEMU
 * mid-run know how the counters of what was recorded must relate. */
#include <stdint.h>
#include "platform.h"

volatile uint64_t mt_spin_count;

int main(void)
{
    mt_puts("spin: running until killed\n");
    for (;;)
        mt_spin_count = mt_spin_count + 1;
    return 0;
}
