/* riscv32 uses the RISC-V user-mode program of riscv64 unchanged (it has no XLEN-specific instruction). */
#include "../riscv64/priv.S"
