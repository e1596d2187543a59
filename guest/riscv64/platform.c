/* RISC-V -M virt -bios none platform (riscv64, and riscv32 through its arch.json): ns16550a UART, sifive_test exit device, CLINT software interrupts. */
#include <stdint.h>
#include "platform.h"

#define UART_BASE 0x10000000UL
#define TEST_BASE 0x100000UL
#define CLINT_MSIP 0x2000000UL
#define CLINT_MTIME 0x200bff8UL
#define MTIME_HZ 10000000UL
#define MT_MAX_CPUS 8

void mt_park(void) __attribute__((noreturn));
void mt_secondary_main(unsigned cpu);
void mt_unexpected_trap(unsigned long cause, unsigned long epc, unsigned long tval);

/* In .data (not .bss): parked harts read it before hart 0 has zeroed .bss. */
void (*volatile mt_secondary_fn)(unsigned) __attribute__((section(".data"))) = 0;
static volatile int cpu_started[MT_MAX_CPUS];

void mt_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
    while (!(uart[5] & 0x20))
        ;
    uart[0] = (uint8_t)c;
}

void mt_exit(int code)
{
    volatile uint32_t *test = (volatile uint32_t *)TEST_BASE;
    if (code == 0)
        *test = 0x5555;
    else
        *test = ((uint32_t)(code & 0xffff) << 16) | 0x3333;
    mt_park();
}

unsigned mt_cpu_id(void)
{
    unsigned long id;
    __asm__ volatile("csrr %0, mhartid" : "=r"(id));
    return (unsigned)id;
}

void mt_secondary_main(unsigned cpu)
{
    void (*fn)(unsigned) = mt_secondary_fn;
    __atomic_store_n(&cpu_started[cpu], 1, __ATOMIC_RELEASE);
    fn(cpu);
}

int mt_start_cpus(int n, void (*fn)(unsigned cpu))
{
    volatile uint32_t *msip = (volatile uint32_t *)CLINT_MSIP;
    volatile uint64_t *mtime = (volatile uint64_t *)CLINT_MTIME;
    int started = 0;
    if (n > MT_MAX_CPUS)
        n = MT_MAX_CPUS;
    mt_secondary_fn = fn;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (int k = 1; k < n; k++)
        msip[k] = 1;
    /* Wait (up to 2 s) for the harts to acknowledge: harts that do not exist never do. */
    uint64_t deadline = *mtime + 2 * MTIME_HZ;
    for (int k = 1; k < n; k++) {
        while (!__atomic_load_n(&cpu_started[k], __ATOMIC_ACQUIRE) && *mtime < deadline)
            ;
        if (cpu_started[k])
            started++;
    }
    return started;
}

void mt_unexpected_trap(unsigned long cause, unsigned long epc, unsigned long tval)
{
    mt_puts("unexpected trap: mcause=");
    mt_put_hex(cause);
    mt_puts(" mepc=");
    mt_put_hex(epc);
    mt_puts(" mtval=");
    mt_put_hex(tval);
    mt_puts("\n");
    mt_exit(98);
}
