/* markers: marker instructions in a hot loop. Each of the 1,000,000 passes executes MEMTAP_MARK(7), a control
 * marker whose operation is out of range (no effect: an ordinary no-op, traced as such), a STOP and a START.
 * Tests check that the trace holds exactly one marker record and one fetch of the out-of-range marker per pass. */
#include <stdint.h>
#include "memtap.h"
#include "platform.h"

#define PASSES 1000000

#if defined(__x86_64__) || defined(__i386__)
#define BAD_CONTROL() __asm__ volatile(".byte 0x0f, 0x1f, 0x80; .long 0x4d540077")   /* op 0x77 */
#elif defined(__aarch64__)
#define BAD_CONTROL() __asm__ volatile(".word 0xd2a9abff")   /* movz xzr, #0x4d5f, lsl #16: op 15 */
#elif defined(__riscv)
#define BAD_CONTROL() __asm__ volatile(".word 0x4df02013")   /* slti x0, x0, 0x4df: op 15 */
#else
#define BAD_CONTROL() ((void)0)
#endif

int main(void)
{
    MEMTAP_START();
    for (uint32_t i = 0; i < PASSES; i++) {
        MEMTAP_MARK(7);
        BAD_CONTROL();
        MEMTAP_STOP();
        MEMTAP_START();
    }
    MEMTAP_STOP();
    mt_puts("markers: done\n");
    return 0;
}
