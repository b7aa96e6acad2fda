/* api.c: every function a program may call on purpose (include/memtrack.h), under memdir's
 * names and under LeakSanitizer's. Layer: api, the top; each is a thin call into the layer
 * that does the work (annotations.c, the leak check).
 */
#include "annotations.h"
#include "leakcheck.h"
#include "pending.h"
#include "requests.h"
#include "status.h"

// ---- Pausing, ignoring, root regions, source locations ---------------------------------------
MEMTRACK_EXPORT void memtrack_pause(void) { memtrack_annotations_pause(); }
MEMTRACK_EXPORT void memtrack_resume(void) { memtrack_annotations_resume(); }
MEMTRACK_EXPORT void __lsan_disable(void) { memtrack_annotations_pause(); }
MEMTRACK_EXPORT void __lsan_enable(void) { memtrack_annotations_resume(); }

MEMTRACK_EXPORT void memtrack_note_location(const char *file, int line, const char *function) {
    memtrack_annotations_note_location(file, line, function);
}

/* Returns 0, or -1 when pointer is not a live block recorded for the program. */
MEMTRACK_EXPORT int memtrack_ignore(const void *pointer) { return memtrack_annotations_ignore(pointer); }
MEMTRACK_EXPORT void __lsan_ignore_object(const void *pointer) { (void)memtrack_annotations_ignore(pointer); }

MEMTRACK_EXPORT void __lsan_register_root_region(const void *start, size_t size) {
    memtrack_annotations_register_root_region(start, size);
}
MEMTRACK_EXPORT void __lsan_unregister_root_region(const void *start, size_t size) {
    memtrack_annotations_unregister_root_region(start, size);
}

// ---- On-demand checks --------------------------------------------------------------------
/* The number of definitely and indirectly lost blocks, with the answer (leak-check-SEQ)
 * written into the run directory by leakcheck.c; -1 when no check could run (no tracker yet,
 * MEM_LEAK_CHECK=0). Every pending record is written first, so that the answer and the block
 * records on disk describe the same moment, as `memdir check` does. */
static int check_now(void) {
    if (!atomic_load(&memtrack_ready)) return -1;
    memtrack_busy++;
    memtrack_pending_flush(0);
    memtrack_write_modules(0, 0);
    memtrack_busy--;
    memtrack_unique_check_sequence();   /* each answer a name of its own (requests.c) */
    return memtrack_leak_check_now(1);
}

MEMTRACK_EXPORT int memtrack_check(void) { return check_now(); }
MEMTRACK_EXPORT int __lsan_do_recoverable_leak_check(void) { return check_now() > 0; }

/* LSan ends the process when this finds leaks; the tracker never changes what the program
 * does, so it only checks, once, as LSan does. */
MEMTRACK_EXPORT void __lsan_do_leak_check(void) {
    static atomic_int done;
    if (!atomic_exchange(&done, 1)) (void)check_now();
}
