/* arm-thumb: the Arm seq program, assembled as Thumb-2 (see ../arm/seq.S). */
#include "../arm/seq.S"
