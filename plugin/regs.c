/* Guest registers by name: looked up once (QEMU gives the same handles to every vCPU) and read as integers of
 * up to 8 bytes. Reads must happen in a callback QEMU lets read registers (translation, or one registered with
 * QEMU_PLUGIN_CB_R_REGS); a register the running QEMU does not expose, or a failed read, is reported as such. */
#include <string.h>

#include "memtap_plugin.h"

static __thread GByteArray *buf;   /* vCPUs read concurrently under MTTCG */
MT_LOCAL bool mt_regs_big_endian;   /* QEMU returns registers in the target's byte order */

/* Registers QEMU 10.1 renamed (Arm's system registers by their AArch64 names): the old name is asked for, and the
 * new one serves where the old is missing. */
static const char *const renamed[][2] = {{"VBAR", "VBAR_EL1"}, {"SCTLR", "SCTLR_EL1"}};

/* The name QEMU 10.1 gives the register memtap asks for as `name`, or NULL. */
static const char *new_name(const char *name)
{
    for (size_t i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++) {
        if (!strcmp(name, renamed[i][0])) {
            return renamed[i][1];
        }
    }
    return NULL;
}

/* Fills handles[i] for each names[i] the vCPU has, under its own name or else its QEMU 10.1 name (NULL names are
 * skipped); call from a vCPU-init callback. */
void mt_regs_find(const char *const *names, size_t n, struct qemu_plugin_register **handles)
{
    GArray *regs = qemu_plugin_get_registers();
    if (!regs) {
        return;
    }
    const qemu_plugin_reg_descriptor *d = (const qemu_plugin_reg_descriptor *)regs->data;
    for (int renamed_pass = 0; renamed_pass < 2; renamed_pass++) {
        for (unsigned i = 0; i < regs->len; i++) {
            for (size_t k = 0; k < n && d[i].name; k++) {
                const char *want = names[k] && renamed_pass ? new_name(names[k]) : names[k];
                if (want && !handles[k] && !strcmp(want, d[i].name)) {
                    handles[k] = d[i].handle;
                }
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
