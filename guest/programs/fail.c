/* fail: checks the failure path of mt_exit. main returns 3, so QEMU must exit with a non-zero status
 * (3 on riscv64 and on aarch64 with semihosting enabled). */
#include "platform.h"

int main(void)
{
    mt_puts("fail: returning 3\n");
    return 3;
}
