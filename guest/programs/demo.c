/* demo: the README example. CRC32 of a 64 KiB pattern buffer, traced between START and STOP. */
#include <stdint.h>
#include "memtap.h"
#include "platform.h"

#define SIZE 65536

static uint8_t buf[SIZE];

static uint32_t crc32(const uint8_t *p, unsigned long n)
{
    uint32_t crc = 0xffffffffu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

int main(void)
{
    for (unsigned long i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)(i * 7 + 3);

    MEMTAP_START();
    uint32_t crc = crc32(buf, SIZE);
    MEMTAP_STOP();

    mt_puts("memtap demo: crc32=0x");
    for (int s = 28; s >= 0; s -= 4)
        mt_putc("0123456789abcdef"[(crc >> s) & 15]);
    mt_puts("\n");
    return 0;
}
