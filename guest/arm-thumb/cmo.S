/* arm-thumb: the Arm cmo program, assembled as Thumb-2 (see ../arm/cmo.S). */
#include "../arm/cmo.S"
