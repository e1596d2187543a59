/* PowerPC e500 -M ppce500 platform: ns16550 UART, GPIO and PCI host in the CCSR block (physical 0xF_E000_0000,
 * mapped with a TLB1 entry), power off through the GPIO pin QEMU wires to it, failure exits through pvpanic-pci, CPUs
 * released through QEMU's ePAPR spin table.
 *
 * Exit: code 0 -> GPIO pin 0 high: QEMU powers off, status 0.
 *       code != 0 -> the code is printed, then a panic is reported to the pvpanic-pci device (arch.json adds
 *       `-device pvpanic-pci -action panic=exit-failure`): QEMU exits with status 1. ppce500 has no device that
 *       exits with a chosen status, and QEMU's e500 does not route any guest-triggerable source to a machine
 *       check (which would be a checkstop = panic too). */
#include <stdint.h>
#include "platform.h"

#define CCSR_VA 0xe0000000u
#define CCSR_PA 0xfe0000000ull
#define SPIN_VA 0xef000000u
#define SPIN_PA 0xfef000000ull
#define UART (CCSR_VA + 0x4500)
#define GPIO (CCSR_VA + 0xff000)
#define PCI_REGS (CCSR_VA + 0x8000)
#define PVPANIC_PCI_ID 0x00111b36u  /* device 0x0011, vendor 0x1b36 */
#define PVPANIC_BUS_ADDR 0x80000000u
#define PVPANIC_CPU_ADDR 0xc0000000u
#define MT_MAX_CPUS 8
#define MAS2_I 0x08
#define MAS2_G 0x02
#define MAS3_ALL 0x3f             /* UX SX UW SW UR SR */
#define TSIZE_4K 2                /* page size = 1 KiB << TSIZE */
#define TSIZE_1M 10

#define REG32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define MTSPR(n, v) __asm__ volatile("mtspr %0, %1" ::"i"(n), "r"(v))

void mt_park(void) __attribute__((noreturn));
void mt_secondary_start(void);
void mt_secondary_main(unsigned cpu);
void mt_ppc_platform_init(void);
void mt_ppc_tlb1_map(unsigned entry, uint32_t va, uint64_t pa, unsigned tsize, unsigned wimge);
void mt_ppc_unexpected(unsigned vector, unsigned long srr0, unsigned long srr1, unsigned long esr);

static void (*volatile secondary_fn)(unsigned);
static volatile int cpu_started[MT_MAX_CPUS];

/* TLB1 entry `entry` (IPROT, TID 0): va -> pa (36-bit), size 1 KiB << tsize, all permissions. */
void mt_ppc_tlb1_map(unsigned entry, uint32_t va, uint64_t pa, unsigned tsize, unsigned wimge)
{
    MTSPR(624, 0x10000000u | (entry << 16));           /* MAS0: TLBSEL 1, ESEL */
    MTSPR(625, 0xc0000000u | (tsize << 7));            /* MAS1: V, IPROT, TSIZE */
    MTSPR(626, va | wimge);                            /* MAS2: EPN, WIMGE */
    MTSPR(627, (uint32_t)pa | MAS3_ALL);               /* MAS3: RPN, permissions */
    MTSPR(944, (uint32_t)(pa >> 32));                  /* MAS7: RPN bits above 32 */
    __asm__ volatile("isync; tlbwe; isync" ::: "memory");
}

void mt_ppc_platform_init(void)
{
    mt_ppc_tlb1_map(1, CCSR_VA, CCSR_PA, TSIZE_1M, MAS2_I | MAS2_G);
    mt_ppc_tlb1_map(2, SPIN_VA, SPIN_PA, TSIZE_4K, MAS2_I | MAS2_G);
}

void mt_putc(char c)
{
    while (!(*(volatile uint8_t *)(UART + 5) & 0x20))
        ;
    *(volatile uint8_t *)UART = (uint8_t)c;
}

/* PCI configuration read/write on bus 0 (address register big-endian, data register little-endian). */
static uint32_t pci_cfg_addr(unsigned slot, unsigned reg)
{
    return 0x80000000u | (slot << 11) | reg;
}

static uint32_t pci_cfg_read(unsigned slot, unsigned reg)
{
    REG32(PCI_REGS + 0) = pci_cfg_addr(slot, reg);
    return __builtin_bswap32(REG32(PCI_REGS + 4));
}

static void pci_cfg_write(unsigned slot, unsigned reg, uint32_t v)
{
    REG32(PCI_REGS + 0) = pci_cfg_addr(slot, reg);
    REG32(PCI_REGS + 4) = __builtin_bswap32(v);
}

/* Finds the pvpanic-pci device, maps its BAR through outbound window 1 and a TLB1 entry, and reports a panic.
 * Returns 0 when there is no such device. */
static int pvpanic_report(void)
{
    for (unsigned slot = 0; slot < 32; slot++) {
        if (pci_cfg_read(slot, 0) != PVPANIC_PCI_ID)
            continue;
        pci_cfg_write(slot, 0x10, PVPANIC_BUS_ADDR);            /* BAR0 */
        pci_cfg_write(slot, 0x04, 0x2);                         /* command: memory space on */
        REG32(PCI_REGS + 0xc20) = PVPANIC_BUS_ADDR >> 12;       /* POTAR: PCI address */
        REG32(PCI_REGS + 0xc28) = PVPANIC_CPU_ADDR >> 12;       /* POWBAR: CPU physical address */
        REG32(PCI_REGS + 0xc30) = 0x80000000u | 11;             /* POWAR: enabled, 2 << 11 = 4 KiB */
        mt_ppc_tlb1_map(3, PVPANIC_CPU_ADDR, PVPANIC_CPU_ADDR, TSIZE_4K, MAS2_I | MAS2_G);
        *(volatile uint8_t *)PVPANIC_CPU_ADDR = 1;              /* PVPANIC_PANICKED */
        return 1;
    }
    return 0;
}

void mt_exit(int code)
{
    if (code == 0) {
        REG32(GPIO + 0x00) = 0x80000000u; /* GPDIR: pin 0 is an output */
        REG32(GPIO + 0x08) = 0x80000000u; /* GPDAT: pin 0 high = power off */
    } else {
        mt_puts("mt_exit: FAIL code=");
        mt_put_dec((unsigned)code);
        mt_puts("\n");
        if (!pvpanic_report())
            mt_puts("FAIL (no pvpanic-pci device: powering off with status 0)\n");
        REG32(GPIO + 0x00) = 0x80000000u;
        REG32(GPIO + 0x08) = 0x80000000u;
    }
    mt_park();
}

unsigned mt_cpu_id(void)
{
    unsigned long pir;
    __asm__ volatile("mfspr %0, 286" : "=r"(pir));
    return (unsigned)pir;
}

void mt_secondary_main(unsigned cpu)
{
    void (*fn)(unsigned) = secondary_fn;
    __atomic_store_n(&cpu_started[cpu], 1, __ATOMIC_RELEASE);
    fn(cpu);
}

int mt_start_cpus(int n, void (*fn)(unsigned cpu))
{
    int started = 0;
    if (n > MT_MAX_CPUS)
        n = MT_MAX_CPUS;
    secondary_fn = fn;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (int k = 1; k < n; k++) {
        /* ePAPR spin table entry k (32 bytes): addr (u64) at 0, r3 (u64) at 8; writing an even addr releases */
        uintptr_t e = SPIN_VA + (uintptr_t)k * 0x20;
        REG32(e + 8) = 0;
        REG32(e + 12) = (uint32_t)k;
        REG32(e + 0) = 0;
        REG32(e + 4) = (uint32_t)(uintptr_t)&mt_secondary_start;
    }
    for (int k = 1; k < n; k++) {
        for (unsigned long t = 0; t < 50000000ul && !__atomic_load_n(&cpu_started[k], __ATOMIC_ACQUIRE); t++)
            ;
        if (cpu_started[k])
            started++;
    }
    return started;
}

void mt_ppc_unexpected(unsigned vector, unsigned long srr0, unsigned long srr1, unsigned long esr)
{
    mt_puts("unexpected exception: ivor=");
    mt_put_dec(vector);
    mt_puts(" srr0=");
    mt_put_hex(srr0);
    mt_puts(" srr1=");
    mt_put_hex(srr1);
    mt_puts(" esr=");
    mt_put_hex(esr);
    mt_puts("\n");
    mt_exit(98);
}
