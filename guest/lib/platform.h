/* memtap guest platform API: implemented per architecture in guest/<arch>/platform.c (+ start.S). */
#ifndef MT_PLATFORM_H
#define MT_PLATFORM_H

void mt_putc(char c);
void mt_puts(const char *s);
void mt_put_hex(unsigned long long v); /* 64 bits on every arch (checksums are 64-bit) */
void mt_put_dec(unsigned long v);
void mt_exit(int code) __attribute__((noreturn));
unsigned mt_cpu_id(void);
/* Start CPUs 1..n-1 running fn(cpu) on their own stacks (they park when fn returns).
 * Returns the number of CPUs started, or 0 where unsupported. */
int mt_start_cpus(int n, void (*fn)(unsigned cpu));

int main(void);

#endif
