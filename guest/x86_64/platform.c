/*
 * memtap x86 guests (x86_64 and i386, which lists this file in its arch.json): platform functions
 * (guest/lib/platform.h) for QEMU -M pc. The same C compiles for both; start.S differs.
 *
 * Console: COM1 (16550 UART at I/O port 0x3f8).
 * Exit:    code 0  -> ACPI soft-off: PIIX4 PM1a control register at port 0x604 (PM I/O base 0x600, as SeaBIOS
 *                     programs it on -M pc), SLP_EN with SLP_TYP 0 (QEMU's _S5). With -no-reboot QEMU then
 *                     exits with status 0.
 *          code !=0 -> isa-debug-exit device (iobase 0xf4, iosize 4, in arch.json's qemu_args): writing v makes
 *                     QEMU exit with status (v << 1) | 1, never 0 (so code 1 -> status 3, code 3 -> status 7).
 * CPUs:    mt_cpu_id = initial local APIC id (CPUID leaf 1), which QEMU numbers 0..n-1.
 *          mt_start_cpus: INIT + SIPI + SIPI through the local APIC (0xfee00000) for each CPU in turn, with a
 *          real-mode trampoline (start.S) copied to MT_X86_TRAMPOLINE.
 */
#include <stdint.h>

#include "platform.h"

#define COM1 0x3f8
#define LAPIC_BASE 0xfee00000ul
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define MT_X86_TRAMPOLINE 0x8000ul /* 4 KiB aligned, below 1 MiB, free once the BIOS has handed over */
#define MAX_CPUS 8
#define AP_STACK_SIZE 16384

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void delay(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        __asm__ volatile("pause");
}

/* Called by start.S on the boot CPU before main. */
void mt_x86_platform_init(void);
void mt_x86_platform_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void mt_putc(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

void mt_exit(int code)
{
    if (code == 0)
        outw(0x604, 0x2000);
    else
        outl(0xf4, (uint32_t)code);
    /* QEMU acts on the request asynchronously: give it time before concluding that nothing answered. */
    delay(50000000ul);
    mt_puts("memtap-x86: mt_exit could not stop QEMU\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}

unsigned mt_cpu_id(void)
{
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    return b >> 24;
}

/* ---- secondary CPUs ---- */

extern char ap_trampoline[], ap_trampoline_end[];

/* Read by start.S (ap_long_mode) on the CPU being started. */
uintptr_t mt_x86_ap_stack;
uint32_t mt_x86_ap_cpu;

static void (*volatile ap_fn)(unsigned cpu);
static volatile int ap_started;
static unsigned char ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

void mt_x86_ap_main(unsigned cpu) __attribute__((noreturn));
void mt_x86_ap_main(unsigned cpu)
{
    void (*fn)(unsigned) = ap_fn;
    __atomic_store_n(&ap_started, 1, __ATOMIC_RELEASE);
    fn(cpu);
    for (;;)
        __asm__ volatile("cli; hlt"); /* parked: no memory accesses */
}

static void lapic_write(unsigned reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }
static uint32_t lapic_read(unsigned reg) { return *(volatile uint32_t *)(LAPIC_BASE + reg); }

static void lapic_ipi(unsigned apic_id, uint32_t lo)
{
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, lo);
    while (lapic_read(LAPIC_ICR_LO) & (1u << 12)) /* delivery status: send pending */
        __asm__ volatile("pause");
}

int mt_start_cpus(int n, void (*fn)(unsigned cpu))
{
    int started = 0;
    if (n > MAX_CPUS)
        n = MAX_CPUS;

    /* copy the real-mode trampoline below 1 MiB */
    volatile unsigned char *dst = (volatile unsigned char *)MT_X86_TRAMPOLINE;
    for (const char *p = ap_trampoline; p < ap_trampoline_end; p++)
        *dst++ = (unsigned char)*p;

    ap_fn = fn;
    for (int cpu = 1; cpu < n; cpu++) {
        mt_x86_ap_stack = (uintptr_t)&ap_stacks[cpu][AP_STACK_SIZE];
        mt_x86_ap_cpu = (uint32_t)cpu;
        __atomic_store_n(&ap_started, 0, __ATOMIC_RELEASE);

        lapic_ipi((unsigned)cpu, 0x00004500); /* INIT, level assert */
        delay(100000);
        for (int k = 0; k < 2 && !__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE); k++) {
            lapic_ipi((unsigned)cpu, 0x00004600 | (uint32_t)(MT_X86_TRAMPOLINE >> 12)); /* SIPI */
            for (unsigned long t = 0; t < 2000000 && !__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE); t++)
                __asm__ volatile("pause");
        }
        if (!__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE))
            break; /* no such CPU (QEMU started with fewer) */
        started++;
    }
    return started;
}

/* Called by start.S for an unexpected CPU exception (vector 0..31). */
void mt_x86_exception(unsigned long vector, unsigned long error, unsigned long ip) __attribute__((noreturn));
void mt_x86_exception(unsigned long vector, unsigned long error, unsigned long ip)
{
    mt_puts("memtap-x86: unexpected exception ");
    mt_put_hex(vector);
    mt_puts(" error ");
    mt_put_hex(error);
    mt_puts(" ip ");
    mt_put_hex(ip);
    mt_putc('\n');
    mt_exit(1);
}
