/* region: completeness check. Inside the 4 KiB mt_region, between START and STOP:
 * 512 u64 stores, 1024 u32 loads, 256 u8 stores (every 16th byte), 512 u64 loads. Nothing else touches it. */
#include <stdint.h>
#include "memtap.h"
#include "platform.h"

uint8_t mt_region[4096] __attribute__((aligned(4096)));

int main(void)
{
    volatile uint64_t *p64 = (volatile uint64_t *)mt_region;
    volatile uint32_t *p32 = (volatile uint32_t *)mt_region;
    volatile uint8_t *p8 = (volatile uint8_t *)mt_region;
    uint64_t sum = 0;

    MEMTAP_START();
    for (unsigned i = 0; i < 512; i++)
        p64[i] = 0x0101010101010101ull * (i & 0xff) + i;
    for (unsigned i = 0; i < 1024; i++)
        sum += p32[i];
    for (unsigned i = 0; i < 256; i++)
        p8[i * 16] = (uint8_t)i;
    for (unsigned i = 0; i < 512; i++)
        sum += p64[i];
    MEMTAP_STOP();

    mt_puts("region: sum=");
    mt_put_hex(sum);
    mt_puts("\n");
    return 0;
}
