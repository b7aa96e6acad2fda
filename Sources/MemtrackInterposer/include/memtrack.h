/* memtrack.h: the installable header of libmemtrack.so (the catalog's "Source locations and
 * annotations"). C, C++ and Swift (as the MemtrackInterposer module's header).
 *
 * Nothing here needs libmemtrack at link time: every function is a weak reference, null when
 * the program runs without LD_PRELOAD=libmemtrack.so, and the macros below then do nothing.
 *
 *   memtrack_pause(); ... memtrack_resume();   blocks allocated by this thread in between are
 *                                              never recorded (nesting; frees are still checked)
 *   memtrack_ignore(pointer);                  never report this block (0, or -1: not a live block)
 *   memtrack_check();                          on-demand leak check: the number of lost blocks,
 *                                              the report in the run directory; -1 when the
 *                                              build has no leak check or the tracker is absent
 *
 * With MEMTRACK_SOURCE_LOCATIONS defined before the first inclusion, malloc, calloc, realloc,
 * free, strdup, strndup and aligned_alloc become macros that note __FILE__, __LINE__ and
 * __func__ for the block they make; memdir shows that location where the stack has no debug
 * information. The header includes <stdlib.h> and <string.h> itself before it defines them,
 * so it may come first or last among a file's includes.
 *
 * From Swift (whose importer does not see the macros) check memtrack_loaded() first.
 */
#ifndef MEMTRACK_H
#define MEMTRACK_H

#include <stddef.h>

#define MEMTRACK_RECORD_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MEMTRACK_WEAK __attribute__((weak))
#else
#define MEMTRACK_WEAK
#endif

void memtrack_pause(void) MEMTRACK_WEAK;
void memtrack_resume(void) MEMTRACK_WEAK;
int memtrack_ignore(const void *pointer) MEMTRACK_WEAK;
int memtrack_check(void) MEMTRACK_WEAK;
void memtrack_note_location(const char *file, int line, const char *function) MEMTRACK_WEAK;

/* Whether libmemtrack.so is loaded (its functions may be called directly then). */
static inline int memtrack_loaded(void) { return memtrack_pause != 0; }

#ifdef __cplusplus
}
#endif

/* Calls that do nothing without the tracker. A function-like macro does not expand inside its
 * own expansion, so the inner names are the functions. */
#ifndef MEMTRACK_NO_CALL_MACROS
#define memtrack_pause() (memtrack_pause ? memtrack_pause() : (void)0)
#define memtrack_resume() (memtrack_resume ? memtrack_resume() : (void)0)
#define memtrack_ignore(pointer) (memtrack_ignore ? memtrack_ignore(pointer) : -1)
#define memtrack_check() (memtrack_check ? memtrack_check() : -1)
#endif

#ifdef MEMTRACK_SOURCE_LOCATIONS
/* Declared before the macros exist: a later #include of either is then a no-op (include guards)
 * instead of a declaration the macros would mangle. */
#include <stdlib.h>
#include <string.h>
/* The note is used by the next allocation of this thread; it is cleared after the call in
 * case that allocation failed, so it never sticks to an unrelated block. */
static inline void memtrack_note_here(const char *file, int line, const char *function) {
    if (memtrack_note_location) memtrack_note_location(file, line, function);
}
static inline void *memtrack_noted(void *pointer) {
    if (memtrack_note_location) memtrack_note_location(0, 0, 0);
    return pointer;
}
static inline char *memtrack_noted_text(char *pointer) {
    if (memtrack_note_location) memtrack_note_location(0, 0, 0);
    return pointer;
}
#define MEMTRACK_HERE memtrack_note_here(__FILE__, __LINE__, __func__)
#define malloc(size) (MEMTRACK_HERE, memtrack_noted(malloc(size)))
#define calloc(count, size) (MEMTRACK_HERE, memtrack_noted(calloc(count, size)))
#define realloc(pointer, size) (MEMTRACK_HERE, memtrack_noted(realloc(pointer, size)))
#define aligned_alloc(alignment, size) (MEMTRACK_HERE, memtrack_noted(aligned_alloc(alignment, size)))
#define strdup(text) (MEMTRACK_HERE, memtrack_noted_text(strdup(text)))
#define strndup(text, length) (MEMTRACK_HERE, memtrack_noted_text(strndup(text, length)))
/* A free allocates nothing: its note is cleared at once (a stale note would mislabel the next block). */
#define free(pointer) (free(pointer), (void)memtrack_noted(0))
#endif

#endif
