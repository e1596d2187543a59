/* Guest registers by name: looked up once (QEMU gives the same handles to every vCPU) and read as integers of
 * up to 8 bytes. Reads must happen in a callback QEMU lets read registers (translation, or one registered with
 * QEMU_PLUGIN_CB_R_REGS); a register the running QEMU does not expose, or a failed read, is reported as such. */
#include <string.h>

#include "memtap_plugin.h"

static __thread GByteArray *buf;   /* vCPUs read concurrently under MTTCG */
MT_LOCAL bool mt_regs_big_endian;   /* QEMU returns registers in the target's byte order */

/* Fills handles[i] for each names[i] the vCPU has (NULL names are skipped); call from a vCPU-init callback. */
void mt_regs_find(const char *const *names, size_t n, struct qemu_plugin_register **handles)
{
    GArray *regs = qemu_plugin_get_registers();
    if (!regs) {
        return;
    }
    const qemu_plugin_reg_descriptor *d = (const qemu_plugin_reg_descriptor *)regs->data;
    for (unsigned i = 0; i < regs->len; i++) {
        for (size_t k = 0; k < n && d[i].name; k++) {
            if (names[k] && !handles[k] && !strcmp(names[k], d[i].name)) {
                handles[k] = d[i].handle;
            }
        }
    }
    g_array_free(regs, 1);
}

bool mt_regs_read(struct qemu_plugin_register *handle, uint64_t *value)
{
    if (!handle) {
        return false;
    }
    if (!buf) {
        buf = g_byte_array_new();
    }
    g_byte_array_set_size(buf, 0);
    int n = qemu_plugin_read_register(handle, buf);
    if (n <= 0 || n > 8 || buf->len < (unsigned)n) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | buf->data[mt_regs_big_endian ? i : n - 1 - i];
    }
    *value = v;
    return true;
}
