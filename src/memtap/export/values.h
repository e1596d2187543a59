/* memtap export core: reading the values of a record column whatever its integer width. */
#ifndef MEMTAP_EXPORT_VALUES_H
#define MEMTAP_EXPORT_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* Value i of an array of `width`-byte unsigned integers (1, 2, 4 or 8). */
static inline uint64_t mx_load(const void *data, unsigned width, size_t i)
{
    switch (width) {
    case 1:
        return ((const uint8_t *)data)[i];
    case 2:
        return ((const uint16_t *)data)[i];
    case 4:
        return ((const uint32_t *)data)[i];
    default:
        return ((const uint64_t *)data)[i];
    }
}

#endif
