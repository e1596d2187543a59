/* Helpers for guest programs with their own EL1 vector table (assembly only; included from .S files). */

/* Keep VBAR_EL1 in \saved and point it at \table. Clobbers x9. */
.macro set_vectors table, saved
    mrs     \saved, vbar_el1
    adrp    x9, \table
    add     x9, x9, :lo12:\table
    msr     vbar_el1, x9
    isb
.endm

/* Vector slots \first .. \last - 1 (of 16, 0x80 bytes each) that go on to the same slot of the default table
 * (start.S's mt_vectors), so a program's table need only write the slots it handles. */
.macro default_vector_slots first, last
    .set slot, \first
    .rept \last - \first
    .balign 128
    b       mt_vectors + slot * 128
    .set slot, slot + 1
    .endr
.endm
