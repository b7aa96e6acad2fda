/* credentials.c: the program changes its user or group ids.
 *
 * glibc applies set*id calls to every thread of the process (its SIGSETXID broadcast), the
 * tracker's writer and file threads included, and aborts the process if the call fails in any
 * of them. Capabilities and PR_SET_KEEPCAPS are per thread: a program that keeps capabilities
 * (prctl(PR_SET_KEEPCAPS)), changes uid, raises its capabilities again and then changes gid (as
 * `setpriv --reuid --regid` does) made the gid change fail in the tracker's threads, which had
 * lost theirs, and glibc aborted (exit 134). So before each such call the tracker's threads take
 * the calling thread's capability sets, PR_SET_KEEPCAPS and securebits: every thread then makes
 * the same transition, and none keeps a privilege the program gave up.
 *
 * A uid change can make the run directory (mode 0700, owned by the old uid) unwritable. Before
 * it, the status is written as it would read with one more lost event, with why; after it, the
 * ordinary status replaces that mark if the directory is still writable. If not, the mark stays,
 * and memdir says the record is incomplete.
 *
 * Layer: process, on the writer and files (their threads follow) and status.
 */
#include "credentials.h"
#include "capabilities.h"
#include "files.h"
#include "format.h"
#include "lock.h"
#include "pending.h"
#include "status.h"
#include "sys.h"

#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Has the tracker's threads take this thread's capabilities, and waits (at most 2 s) until they
 * have: the set*id call that follows runs in all of them. */
static memtrack_lock request_lock;
static void tracker_threads_follow(void) {
    int threads = (memtrack_pending_writer_thread() ? 1 : 0) + (atomic_load(&memtrack_file_thread) ? 1 : 0);
    if (!threads) return;
    memtrack_lock_acquire(&request_lock);
    if (memtrack_credentials_publish()) {
        memtrack_pending_wake_writer();
        memtrack_files_wake();
        memtrack_credentials_wait(threads);
    }
    memtrack_lock_release(&request_lock);
}

static int is_ours(void) {
    return atomic_load(&memtrack_run_directory) >= 0 && (pid_t)memtrack_sys_getpid() == memtrack_pid;
}

static void before(const char *call, int changes_uid) {
    if (!is_ours()) return;
    int saved_errno = errno;
    memtrack_busy++;
    if (changes_uid) {
        char why[96], *out = why, *end = why + sizeof why - 1;
        out = memtrack_put_text(out, end, call);
        out = memtrack_put_text(out, end, ": the run directory may not be writable after the uid change");
        *out = 0;
        memtrack_write_status_mark(why);
    }
    tracker_threads_follow();
    memtrack_busy--;
    errno = saved_errno;
}

static int after(int result, int changes_uid) {
    if (!changes_uid || !is_ours()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    memtrack_write_status("running", 0, NULL);   /* replaces the mark if we still may */
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

/* Found at start-up: dlsym is not safe in a signal handler, where set*id calls are allowed. */
static int (*next_setuid)(uid_t), (*next_seteuid)(uid_t), (*next_setreuid)(uid_t, uid_t),
    (*next_setresuid)(uid_t, uid_t, uid_t), (*next_setgid)(gid_t), (*next_setegid)(gid_t),
    (*next_setregid)(gid_t, gid_t), (*next_setresgid)(gid_t, gid_t, gid_t), (*next_setgroups)(size_t, const gid_t *);

void memtrack_credentials_start(void) {
    next_setuid = (int (*)(uid_t))dlsym(RTLD_NEXT, "setuid");
    next_seteuid = (int (*)(uid_t))dlsym(RTLD_NEXT, "seteuid");
    next_setreuid = (int (*)(uid_t, uid_t))dlsym(RTLD_NEXT, "setreuid");
    next_setresuid = (int (*)(uid_t, uid_t, uid_t))dlsym(RTLD_NEXT, "setresuid");
    next_setgid = (int (*)(gid_t))dlsym(RTLD_NEXT, "setgid");
    next_setegid = (int (*)(gid_t))dlsym(RTLD_NEXT, "setegid");
    next_setregid = (int (*)(gid_t, gid_t))dlsym(RTLD_NEXT, "setregid");
    next_setresgid = (int (*)(gid_t, gid_t, gid_t))dlsym(RTLD_NEXT, "setresgid");
    next_setgroups = (int (*)(size_t, const gid_t *))dlsym(RTLD_NEXT, "setgroups");
}

#define NOT_FOUND() (errno = ENOSYS, -1)
MEMTRACK_EXPORT int setuid(uid_t uid) {
    if (!next_setuid) return NOT_FOUND();
    before("setuid", 1);
    return after(next_setuid(uid), 1);
}
MEMTRACK_EXPORT int seteuid(uid_t uid) {
    if (!next_seteuid) return NOT_FOUND();
    before("seteuid", 1);
    return after(next_seteuid(uid), 1);
}
MEMTRACK_EXPORT int setreuid(uid_t real, uid_t effective) {
    if (!next_setreuid) return NOT_FOUND();
    before("setreuid", 1);
    return after(next_setreuid(real, effective), 1);
}
MEMTRACK_EXPORT int setresuid(uid_t real, uid_t effective, uid_t saved) {
    if (!next_setresuid) return NOT_FOUND();
    before("setresuid", 1);
    return after(next_setresuid(real, effective, saved), 1);
}
MEMTRACK_EXPORT int setgid(gid_t gid) {
    if (!next_setgid) return NOT_FOUND();
    before("setgid", 0);
    return next_setgid(gid);
}
MEMTRACK_EXPORT int setegid(gid_t gid) {
    if (!next_setegid) return NOT_FOUND();
    before("setegid", 0);
    return next_setegid(gid);
}
MEMTRACK_EXPORT int setregid(gid_t real, gid_t effective) {
    if (!next_setregid) return NOT_FOUND();
    before("setregid", 0);
    return next_setregid(real, effective);
}
MEMTRACK_EXPORT int setresgid(gid_t real, gid_t effective, gid_t saved) {
    if (!next_setresgid) return NOT_FOUND();
    before("setresgid", 0);
    return next_setresgid(real, effective, saved);
}
MEMTRACK_EXPORT int setgroups(size_t count, const gid_t *groups) {
    if (!next_setgroups) return NOT_FOUND();
    before("setgroups", 0);
    return next_setgroups(count, groups);
}
