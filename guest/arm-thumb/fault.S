/* arm-thumb: the Arm fault program, assembled as Thumb-2 (see ../arm/fault.S). */
#include "../arm/fault.S"
