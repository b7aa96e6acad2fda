/* saferead.h: reading memory that may be unmapped, protected or changing (saferead.c). */
#ifndef MEMTRACK_SAFEREAD_H
#define MEMTRACK_SAFEREAD_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* Copies up to `bytes` from `from` into `to` and returns how many it copied: fewer at the first
 * page that cannot be read (never a fault). -1 when this process cannot read itself that way
 * (process_vm_readv forbidden or missing). */
long memtrack_safe_copy(void *to, uintptr_t from, size_t bytes);

/* One aligned word: 1 when it could be read. */
int memtrack_safe_word(uintptr_t address, uint64_t *value);

#pragma GCC visibility pop

#endif
