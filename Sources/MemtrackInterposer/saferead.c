/* saferead.c: reads this process's memory without ever faulting, through process_vm_readv on
 * our own pid: an unmapped or PROT_NONE page, or one a running thread has just protected,
 * ends the copy with a short count (or EFAULT) instead of SIGSEGV. One remote iovec per page,
 * so that a copy stops exactly at the first bad page on any kernel.
 *
 * Used by the leak check wherever memory may be damaged or may change under it (see the top of
 * leakcheck.c). A process_vm_readv call costs about a microsecond plus the copy.
 *
 * Where process_vm_readv does not exist (ENOSYS: qemu-user, which runs aarch64 programs on
 * x86-64), the copy goes through a pipe instead: write() from a bad page fails with EFAULT, as
 * the kernel (or qemu) checks the source; one page a write, so a bad page ends the copy there.
 *
 * Layer: base.
 */
#include "saferead.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096ul
#define PAGES_PER_CALL 64   /* 256 KiB: the copy, not the call, dominates beyond this */

/* The pipe copy: bytes read before the first bad page, or -1 when no pipe can be made. */
static long copy_through_pipe(void *to, uintptr_t from, size_t bytes) {
    int ends[2];
    if (syscall(SYS_pipe2, ends, O_CLOEXEC) != 0) return -1;
    size_t done = 0;
    while (done < bytes) {
        uintptr_t at = from + done;
        size_t piece = PAGE - (at & (PAGE - 1));
        if (piece > bytes - done) piece = bytes - done;
        long written = syscall(SYS_write, ends[1], (const void *)at, (long)piece);
        if (written <= 0) break;   /* EFAULT: the page cannot be read */
        long got = 0;
        while (got < written) {
            long n = syscall(SYS_read, ends[0], (char *)to + done + got, (long)(written - got));
            if (n <= 0) break;
            got += n;
        }
        done += (size_t)got;
        if (got < (long)piece) break;
    }
    syscall(SYS_close, ends[0]);
    syscall(SYS_close, ends[1]);
    return (long)done;
}

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
            if (error == ENOSYS) {   /* qemu-user: see the top */
                int kept = errno;
                long more = copy_through_pipe((char *)to + done, from + done, bytes - done);
                errno = kept;
                return more < 0 ? (done ? (long)done : -1) : (long)(done + (size_t)more);
            }
            return done ? (long)done : -1;   /* EPERM: not available here */
        }
        done += (size_t)copied;
        if ((size_t)copied < local.iov_len) break;
    }
    return (long)done;
}

int memtrack_safe_word(uintptr_t address, uint64_t *value) {
    return memtrack_safe_copy(value, address, sizeof *value) == (long)sizeof *value;
}
