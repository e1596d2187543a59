/* arm-thumb: the Arm mmu program, assembled as Thumb-2 (see ../arm/mmu.S). */
#include "../arm/mmu.S"
