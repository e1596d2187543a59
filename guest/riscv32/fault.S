/* riscv32 uses the RISC-V fault program of riscv64 unchanged (it has no XLEN-specific instruction). */
#include "../riscv64/fault.S"
