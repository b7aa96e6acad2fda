/* requests.c: requests from memdir to a running process, through its run directory.
 * `memdir check` creates `check-request`; the writer thread looks for it on every pass (one
 * unlinkat, which also consumes it), writes out every young block, and runs the leak check. The answer is a
 * `leak-check-SEQ` file, written whole under a temporary name and renamed into place.
 *
 * The classification lives in leakcheck.c (memtrack_leak_check_now), which writes the answer:
 * with MEM_LEAK_CHECK=0 it is `result skipped disabled`.
 *
 * Layer: requests, on the leak check.
 */
#include "requests.h"
#include "sys.h"
#include "files.h"
#include "leakcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>

/* The answer is named after the sequence number current when the check runs. An idle process
 * allocates nothing between two checks, so both answers had one name: the second overwrote the
 * first, and memdir, which waits for a name it has not seen before, never saw an answer. A number
 * taken for each check (no block ever gets it) makes every answer's name new. */
void memtrack_unique_check_sequence(void) {
    atomic_fetch_add(&memtrack_sequence, 1);
}

/* Called by the writer thread at the start of each pass: 1 when a check was requested (the
 * request is consumed). The pass then writes every young block, so the record on disk is the
 * whole live set when the check runs. */
int memtrack_requests_take(void) {
    int saved_errno = errno;
    int directory = memtrack_record_directory();
    int taken = directory >= 0 && memtrack_sys_unlinkat(directory, "check-request") == 0;
    memtrack_record_directory_done(directory);
    errno = saved_errno;
    return taken;
}

/* Runs the requested check, which writes its answer (leak-check-SEQ), at the end of the pass. */
void memtrack_requests_answer(void) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    int saved_errno = errno;
    memtrack_unique_check_sequence();
    memtrack_leak_check_now(1);
    errno = saved_errno;
}
