/* Arm (A32 and Thumb-2) -M virt platform: PL011 UART, PSCI (hvc) for power off and CPU_ON, semihosting for
 * failure exits. */
#include <stdint.h>
#include "platform.h"

#define UART_BASE 0x09000000UL
#define PSCI_SYSTEM_OFF 0x84000008UL
#define PSCI_CPU_ON_32 0x84000003UL
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define MT_MAX_CPUS 8

#ifdef __thumb__
#define SEMIHOSTING_TRAP "svc #0xab"
#else
#define SEMIHOSTING_TRAP "svc #0x123456"
#endif

void mt_park(void) __attribute__((noreturn));
void mt_secondary_start(void);
void mt_secondary_main(unsigned cpu);
void mt_arm_unexpected(unsigned long slot, unsigned long lr, unsigned long spsr);

static void (*volatile secondary_fn)(unsigned);
static volatile int exiting;

static long psci(unsigned long fn, unsigned long a1, unsigned long a2, unsigned long a3)
{
    register unsigned long r0 __asm__("r0") = fn;
    register unsigned long r1 __asm__("r1") = a1;
    register unsigned long r2 __asm__("r2") = a2;
    register unsigned long r3 __asm__("r3") = a3;
    __asm__ volatile(".arch_extension virt\n\thvc #0" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3) : : "memory");
    return (long)r0;
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
            /* Semihosting SYS_EXIT_EXTENDED: QEMU exits with `code` (needs -semihosting-config enable=on;
             * without it the SVC is an ordinary one and we come back here through the vectors). */
            static volatile unsigned long block[2];
            exiting = 1;
            block[0] = ADP_STOPPED_APPLICATION_EXIT;
            block[1] = (unsigned long)code;
            register unsigned long r0 __asm__("r0") = SEMIHOSTING_SYS_EXIT_EXTENDED;
            register unsigned long r1 __asm__("r1") = (unsigned long)block;
            __asm__ volatile(SEMIHOSTING_TRAP : "+r"(r0) : "r"(r1) : "memory");
        }
        mt_puts("FAIL\n");
    }
    psci(PSCI_SYSTEM_OFF, 0, 0, 0);
    mt_park();
}

unsigned mt_cpu_id(void)
{
    unsigned long mpidr;
    __asm__ volatile("mrc p15, 0, %0, c0, c0, 5" : "=r"(mpidr));
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
        if (psci(PSCI_CPU_ON_32, (unsigned long)k, (unsigned long)&mt_secondary_start, (unsigned long)k) == 0)
            started++;
    return started;
}

void mt_arm_unexpected(unsigned long slot, unsigned long lr, unsigned long spsr)
{
    mt_puts("unexpected exception: vector=");
    mt_put_dec(slot);
    mt_puts(" lr=");
    mt_put_hex(lr);
    mt_puts(" spsr=");
    mt_put_hex(spsr);
    mt_puts("\n");
    mt_exit(98);
}
