/* The floor under any tracer built on QEMU's plugin API: the instrumentation memtap needs, with callbacks that do
 * nothing. bench/run.py loads it as `-plugin floor_plugin.so,mode=data` (an empty callback at every load and
 * store, as a data trace needs at least), `mode=hw` (that, plus QEMU's physical-address lookup in each callback,
 * as physical addresses need at least), `mode=full` (data, plus an empty callback per block and an inline store
 * per instruction, memtap's way of exact fetch order) or `mode=fullhw` (full and hw together: the floor of a full
 * trace with both addresses). Its slowdown is the least a plugin can cost. */
#include <stdlib.h>
#include <string.h>

#include "qemu_api.h"

MT_EXPORT int qemu_plugin_version = 4;

static bool full, hw;
static uint64_t sink;
static struct qemu_plugin_scoreboard *progress;

static void on_mem(unsigned vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu, (void)udata;
    if (hw) {
        struct qemu_plugin_hwaddr *h = qemu_plugin_get_hwaddr(info, vaddr);
        sink += h ? qemu_plugin_hwaddr_phys_addr(h) + qemu_plugin_hwaddr_is_io(h) : 0;
    }
}

static void on_tb_exec(unsigned vcpu, void *udata)
{
    (void)vcpu, (void)udata;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (full) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (full) {
            qemu_plugin_u64 slot = {progress, 0};
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, slot, i + 1);
        }
        qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
    }
}

MT_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "mode=full")) {
            full = true;
        } else if (!strcmp(argv[i], "mode=fullhw")) {
            full = hw = true;
        } else if (!strcmp(argv[i], "mode=hw")) {
            hw = true;
        } else if (strcmp(argv[i], "mode=data")) {
            return -1;
        }
    }
    progress = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    return 0;
}
