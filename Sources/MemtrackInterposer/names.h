/* names.h: the names the interposer writes and looks up, each listed once (names.c).
 * Layer: format. */
#ifndef MEMTRACK_NAMES_H
#define MEMTRACK_NAMES_H

#pragma GCC visibility push(hidden)

/* An entry point's name as records give it (via=), by enum memtrack_via. */
const char *memtrack_via_name(int via);
/* An allocation family's name (family=), by enum memtrack_family. */
const char *memtrack_family_name(int family);

/* The malloc family's entry points the tracker exports (deepbind.c redirects them all). */
#define MEMTRACK_ALLOCATION_FUNCTIONS 11
extern const char *const memtrack_allocation_names[MEMTRACK_ALLOCATION_FUNCTIONS];

/* C++'s replaceable operator new and delete (Itanium ABI, 64-bit size_t), as cxx.c wraps them
 * and deepbind.c redirects them. */
enum memtrack_operator {
    MEMTRACK_NEW, MEMTRACK_NEW_NOTHROW, MEMTRACK_NEW_ALIGNED, MEMTRACK_NEW_ALIGNED_NOTHROW,
    MEMTRACK_NEW_ARRAY, MEMTRACK_NEW_ARRAY_NOTHROW, MEMTRACK_NEW_ARRAY_ALIGNED, MEMTRACK_NEW_ARRAY_ALIGNED_NOTHROW,
    MEMTRACK_DELETE, MEMTRACK_DELETE_NOTHROW, MEMTRACK_DELETE_SIZED, MEMTRACK_DELETE_ALIGNED,
    MEMTRACK_DELETE_ALIGNED_NOTHROW, MEMTRACK_DELETE_SIZED_ALIGNED,
    MEMTRACK_DELETE_ARRAY, MEMTRACK_DELETE_ARRAY_NOTHROW, MEMTRACK_DELETE_ARRAY_SIZED, MEMTRACK_DELETE_ARRAY_ALIGNED,
    MEMTRACK_DELETE_ARRAY_ALIGNED_NOTHROW, MEMTRACK_DELETE_ARRAY_SIZED_ALIGNED,
    MEMTRACK_OPERATOR_COUNT
};
extern const char *const memtrack_operator_names[MEMTRACK_OPERATOR_COUNT];

#pragma GCC visibility pop

#endif
