/* riscv32 uses the RISC-V mmu program of riscv64 (Sv32 there; see ../riscv64/mmu.S). */
#include "../riscv64/mmu.S"
