/* aarch64 -M virt platform: PL011 UART, PSCI (hvc) for power off and CPU_ON, semihosting for failure exits. */
#include <stdint.h>
#include "platform.h"

#define UART_BASE 0x09000000UL
#define PSCI_SYSTEM_OFF 0x84000008UL
#define PSCI_CPU_ON_64 0xC4000003UL
#define MT_MAX_CPUS 8

void mt_park(void) __attribute__((noreturn));
void mt_secondary_start(void);
void mt_secondary_main(unsigned cpu);
void mt_unexpected_exception(unsigned long slot, unsigned long esr, unsigned long elr, unsigned long far);

static void (*volatile secondary_fn)(unsigned);
static volatile int exiting;

static long psci(unsigned long fn, unsigned long a1, unsigned long a2, unsigned long a3)
{
    register unsigned long x0 __asm__("x0") = fn;
    register unsigned long x1 __asm__("x1") = a1;
    register unsigned long x2 __asm__("x2") = a2;
    register unsigned long x3 __asm__("x3") = a3;
    __asm__ volatile("hvc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
                       "x17", "memory");
    return (long)x0;
}

void mt_putc(char c)
{
    volatile uint32_t *uart = (volatile uint32_t *)UART_BASE;
    while (uart[0x18 / 4] & (1u << 5)) /* UARTFR.TXFF */
        ;
    uart[0] = (uint8_t)c;
}

void mt_exit(int code)
{
    if (code != 0) {
        mt_puts("mt_exit: FAIL code=");
        mt_put_dec((unsigned)code);
        mt_puts("\n");
        if (!exiting) {
            /* Semihosting SYS_EXIT (AArch64 form): QEMU exits with `code` (needs -semihosting-config
             * enable=on; without it HLT is undefined, we come back here via the exception vector). */
            static volatile unsigned long block[2];
            exiting = 1;
            block[0] = 0x20026; /* ADP_Stopped_ApplicationExit */
            block[1] = (unsigned long)code;
            register unsigned long x0 __asm__("x0") = 0x18;
            register unsigned long x1 __asm__("x1") = (unsigned long)block;
            __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
        }
        mt_puts("FAIL\n");
    }
    psci(PSCI_SYSTEM_OFF, 0, 0, 0);
    mt_park();
}

unsigned mt_cpu_id(void)
{
    unsigned long mpidr;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
    return (unsigned)(mpidr & 0xff);
}

void mt_secondary_main(unsigned cpu)
{
    secondary_fn(cpu);
}

int mt_start_cpus(int n, void (*fn)(unsigned cpu))
{
    int started = 0;
    if (n > MT_MAX_CPUS)
        n = MT_MAX_CPUS;
    secondary_fn = fn;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (int k = 1; k < n; k++)
        if (psci(PSCI_CPU_ON_64, (unsigned long)k, (unsigned long)&mt_secondary_start, (unsigned long)k) == 0)
            started++;
    return started;
}

void mt_unexpected_exception(unsigned long slot, unsigned long esr, unsigned long elr, unsigned long far)
{
    mt_puts("unexpected exception: slot=");
    mt_put_dec(slot);
    mt_puts(" esr=");
    mt_put_hex(esr);
    mt_puts(" elr=");
    mt_put_hex(elr);
    mt_puts(" far=");
    mt_put_hex(far);
    mt_puts("\n");
    mt_exit(98);
}
