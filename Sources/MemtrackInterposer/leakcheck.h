/* leakcheck.h: the leak check (leakcheck.c). Layer: check. */
#ifndef MEMTRACK_LEAKCHECK_H
#define MEMTRACK_LEAKCHECK_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Classifies every live block now and writes `leak-check` (on_request 0, `when exit`) or
 * `leak-check-SEQ` (on_request 1, `when request`). Other threads are stopped for the scan only.
 * Returns the number of definitely and indirectly lost blocks, or -1 if it could not run. */
int memtrack_leak_check_now(int on_request);
/* At exit: runs `freeres` (NULL: none) where it is safe, then the check (leakcheck.c). */
int memtrack_leak_check_at_exit(void (*freeres)(void));
/* Set when the exit check left the other threads stopped (they end with the process). */
extern int memtrack_world_held;
/* The allocation path: notes a block whose caller is the dynamic loader (memtrack_in_loader). */
void memtrack_note_loader_block(uintptr_t address);
/* `result skipped REASON` as `leak-check`, signal-safe (for _exit). */
void memtrack_leak_check_skipped(const char *reason);

#pragma GCC visibility pop

#endif
