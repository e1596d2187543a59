/* arm-thumb: the Arm priv program, assembled as Thumb-2 (see ../arm/priv.S). */
#include "../arm/priv.S"
