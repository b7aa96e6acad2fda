/* requests.c: requests from memdir to a running process, through its run directory.
 * `memdir check` creates `check-request`; the writer thread looks for it on every pass (one
 * unlinkat, which also consumes it), writes out every young block, and runs the leak check. The answer is a
 * `leak-check-SEQ` file, written whole under a temporary name and renamed into place.
 *
 * The classification lives in leakcheck.c (memtrack_leak_check_now). It is referenced weakly:
 * without it the request is still answered, with `result skipped`, so the path can be used
 * and tested on its own.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>

extern int memtrack_leak_check_now(int on_request) __attribute__((weak));

static void write_skipped_answer(int directory) {
    char text[256], *out = text, *end = text + sizeof text - 1;
    uint64_t sequence = atomic_load(&memtrack_sequence);
    out = memtrack_put_text(out, end, "memtrack/1 leak-check\nresult skipped classification not available\nwhen request\nseq ");
    out = memtrack_put_decimal(out, end, sequence);
    out = memtrack_put_text(out, end, "\nms ");
    out = memtrack_put_decimal(out, end, memtrack_milliseconds_now());
    out = memtrack_put_text(out, end, "\nend\n");
    char name[48], *n = name, *name_end = name + sizeof name - 1;
    n = memtrack_put_text(n, name_end, "leak-check-");
    n = memtrack_put_decimal(n, name_end, sequence);
    *n = 0;
    int fd = (int)syscall(SYS_openat, directory, ".leak-check.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    ssize_t written = syscall(SYS_write, fd, text, (size_t)(out - text));
    syscall(SYS_close, fd);
    if (written == out - text) syscall(SYS_renameat, directory, ".leak-check.tmp", directory, name);
    else syscall(SYS_unlinkat, directory, ".leak-check.tmp", 0);
}

/* Called by the writer thread at the start of each pass: 1 when a check was requested (the
 * request is consumed). The pass then writes every young block, so the record on disk is the
 * whole live set when the check runs. */
int memtrack_requests_take(void) {
    int directory = atomic_load(&memtrack_run_directory);
    if (directory < 0 || !memtrack_is_run_directory(directory)) return 0;
    int saved_errno = errno;
    int taken = syscall(SYS_unlinkat, directory, "check-request", 0) == 0;
    errno = saved_errno;
    return taken;
}

/* Runs the requested check and writes its answer (at the end of the pass). */
void memtrack_requests_answer(void) {
    int directory = atomic_load(&memtrack_run_directory);
    if (directory < 0) return;
    int saved_errno = errno;
    if (memtrack_leak_check_now) memtrack_leak_check_now(1);
    else write_skipped_answer(directory);
    errno = saved_errno;
}
