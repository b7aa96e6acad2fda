/* capabilities.c: the tracker's own threads (the writer, the file thread) follow the program's
 * capabilities before a set*id call, so that glibc's broadcast of the call succeeds in them too
 * (credentials.c says why). Layer: lock, on sys: the threads that follow are in lower layers
 * than the wrappers that ask them to.
 */
#include "capabilities.h"
#include "sys.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
    struct __user_cap_data_struct capabilities[_LINUX_CAPABILITY_U32S_3];
    int keep_capabilities, securebits;
} wanted;
static atomic_int generation;     /* bumped for each request */
static atomic_int followed;       /* futex word: tracker threads that have followed the request */
static MEMTRACK_THREAD_LOCAL int seen_generation;

/* Called by the tracker's threads (the writer on each wake, the file thread on each request). */
void memtrack_credentials_follow(void) {
    int now = atomic_load(&generation);
    if (now == seen_generation) return;
    seen_generation = now;
    int saved_errno = errno;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    if (wanted.securebits >= 0 && prctl(PR_GET_SECUREBITS) != wanted.securebits)
        prctl(PR_SET_SECUREBITS, (unsigned long)wanted.securebits, 0, 0, 0);
    prctl(PR_SET_KEEPCAPS, (unsigned long)wanted.keep_capabilities, 0, 0, 0);
    memtrack_sys_capset(&header, wanted.capabilities);
    atomic_fetch_add(&followed, 1);
    memtrack_sys_futex_wake(&followed, 1);
    errno = saved_errno;
}

/* The calling thread's capabilities, keep-caps flag and securebits become what the tracker's
 * threads take at their next wake. Returns 0 when they could not be read. */
int memtrack_credentials_publish(void) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    if (memtrack_sys_capget(&header, wanted.capabilities) != 0) return 0;
    wanted.keep_capabilities = prctl(PR_GET_KEEPCAPS) == 1;
    wanted.securebits = prctl(PR_GET_SECUREBITS);
    atomic_store(&followed, 0);
    atomic_fetch_add(&generation, 1);
    return 1;
}

/* Waits (at most 2 s) until `threads` tracker threads have followed. */
void memtrack_credentials_wait(int threads) {
    struct timespec step = {0, 10000000};   /* 10 ms */
    for (int waited = 0; waited < 200; waited++) {
        int done = atomic_load(&followed);
        if (done >= threads) break;
        memtrack_sys_futex_wait_for(&followed, done, &step);
    }
}
