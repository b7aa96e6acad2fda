/* saferead.c: reads this process's memory without ever faulting, through process_vm_readv on
 * our own pid: an unmapped or PROT_NONE page, or one a running thread has just protected,
 * ends the copy with a short count (or EFAULT) instead of SIGSEGV. One remote iovec per page,
 * so that a copy stops exactly at the first bad page on any kernel.
 *
 * Used by the leak check wherever memory may be damaged or may change under it (see the top of
 * leakcheck.c). A process_vm_readv call costs about a microsecond plus the copy.
 */
#include "saferead.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096ul
#define PAGES_PER_CALL 64   /* 256 KiB: the copy, not the call, dominates beyond this */

long memtrack_safe_copy(void *to, uintptr_t from, size_t bytes) {
    size_t done = 0;
    long pid = syscall(SYS_getpid);
    while (done < bytes) {
        struct iovec local = {(char *)to + done, 0}, remote[PAGES_PER_CALL];
        int count = 0;
        uintptr_t at = from + done;
        size_t left = bytes - done;
        while (left && count < PAGES_PER_CALL) {
            size_t piece = PAGE - (at & (PAGE - 1));
            if (piece > left) piece = left;
            remote[count++] = (struct iovec){(void *)at, piece};
            local.iov_len += piece;
            at += piece;
            left -= piece;
        }
        int saved_errno = errno;
        /* Every argument a long: syscall() is variadic, and the upper half of an int is garbage. */
        long copied = syscall(SYS_process_vm_readv, pid, &local, 1l, remote, (long)count, 0l);
        int error = errno;
        errno = saved_errno;
        if (copied < 0) {
            if (error == EFAULT || error == ENOMEM) return (long)done;   /* the first page is bad */
            if (error == EINTR) continue;
            return done ? (long)done : -1;   /* ENOSYS, EPERM: not available here */
        }
        done += (size_t)copied;
        if ((size_t)copied < local.iov_len) break;
    }
    return (long)done;
}

int memtrack_safe_word(uintptr_t address, uint64_t *value) {
    return memtrack_safe_copy(value, address, sizeof *value) == (long)sizeof *value;
}
