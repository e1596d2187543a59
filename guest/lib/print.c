/* Portable console helpers on top of mt_putc (weak: an arch's platform.c may provide its own). */
#include "platform.h"

__attribute__((weak)) void mt_puts(const char *s)
{
    while (*s)
        mt_putc(*s++);
}

__attribute__((weak)) void mt_put_hex(unsigned long long v)
{
    char buf[2 * sizeof v];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    mt_putc('0');
    mt_putc('x');
    while (n)
        mt_putc(buf[--n]);
}

__attribute__((weak)) void mt_put_dec(unsigned long v)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        mt_putc(buf[--n]);
}
