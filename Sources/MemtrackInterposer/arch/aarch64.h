/* arch/aarch64.h: the aarch64 side of arch.h (AAPCS64, Linux). */
#ifndef MEMTRACK_ARCH_AARCH64_H
#define MEMTRACK_ARCH_AARCH64_H

#include <elf.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>

#define MEMTRACK_ARCH_NAME "aarch64"
#define memtrack_cpu_relax() __asm__ volatile("yield" ::: "memory")
#define MEMTRACK_RED_ZONE 0            /* AAPCS64 has none: below SP is free for signals */
#define MEMTRACK_R_GLOB_DAT R_AARCH64_GLOB_DAT
#define MEMTRACK_R_JUMP_SLOT R_AARCH64_JUMP_SLOT

/* x19-x28 and the frame pointer x29. */
#define MEMTRACK_SAVED_REGISTERS 11
#define memtrack_save_registers(to)                                                          \
    __asm__ volatile("stp x19, x20, [%0, #0]\n\tstp x21, x22, [%0, #16]\n\t"                 \
                     "stp x23, x24, [%0, #32]\n\tstp x25, x26, [%0, #48]\n\t"                \
                     "stp x27, x28, [%0, #64]\n\tstr x29, [%0, #80]"                         \
                     : : "r"(to) : "memory")

#define MEMTRACK_WORLD_REGISTERS 34    /* struct user_regs_struct: x0-x30, sp, pc, pstate */
typedef struct user_regs_struct memtrack_regs;
#define MEMTRACK_REGS_SP(r) ((r).sp)

static inline long memtrack_raw6(long number, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}

/* There is no PTRACE_GETREGS here: the general registers are the NT_PRSTATUS register set. */
static inline long memtrack_get_registers(int tid, memtrack_regs *registers) {
    struct iovec io = {registers, sizeof *registers};
    return memtrack_raw6(SYS_ptrace, PTRACE_GETREGSET, tid, NT_PRSTATUS, (long)&io, 0, 0);
}

/* arm64's kernel decides on a restart before the tracee stops (do_signal reads x0 first), and
 * the first argument x0 held is gone (no orig_x0 in any register set): an EINTR cannot be turned
 * into a restart from the tracer. The waits that would see it are not interrupted at all
 * (memtrack_interrupt_would_show); see the catalog's Limits (aarch64). */
static inline void memtrack_restart_interrupted(int tid, long interrupted, long restart, long except) {
    (void)tid; (void)interrupted; (void)restart; (void)except;
}


/* Whether a thread blocked in system call `number` must be left running by the leak check: the
 * waits that end with EINTR on any wake-up (epoll_pwait, epoll_pwait2, rt_sigtimedwait,
 * semtimedop), which memtrack_restart_interrupted cannot restart here. Such a thread changes no
 * memory while it waits; it is read as a running one. */
#define MEMTRACK_INTERRUPT_MAY_SHOW 1
#define memtrack_interrupt_would_show(number)                                                   \
    ((number) == SYS_epoll_pwait || (number) == 441 /* epoll_pwait2 */ ||                        \
     (number) == SYS_rt_sigtimedwait || (number) == SYS_semtimedop)

/* ---- Signal frames, for the frame-pointer walk (unwind.c) ----
 * A handler returns to the signal trampoline (__kernel_rt_sigreturn in the vDSO, or qemu-user's
 * own page) through a frame record {x29, x30} of the interrupted code that the kernel put right
 * above its rt_sigframe and pointed x29 at. The sigframe is the siginfo (128 bytes), then the
 * ucontext, whose uc_mcontext (at 176) is fault_address, x0-x30, sp, pc, pstate and __reserved,
 * which starts with the FPSIMD record (magic 0x46508001, 528 bytes). It is 4688 bytes unless
 * SVE state overflows __reserved, making it larger: then it is searched for downwards. The
 * match must hold x29 and x30 equal to the record's. */
#define MEMTRACK_SIGFRAME_CONTEXT 4384          /* record - sigcontext, without extra state */
#define MEMTRACK_SIGFRAME_SEARCH (64 * 1024)
#define MEMTRACK_FPSIMD_HEADER 0x0000021046508001ull   /* magic, then size 528 */

static inline int memtrack_sigcontext_at(uintptr_t context, const uintptr_t *record) {
    const uint64_t *w = (const uint64_t *)context;   /* fault_address, x0..x30 at 1..31 */
    return w[36] == MEMTRACK_FPSIMD_HEADER && w[30] == record[0] && w[31] == record[1];
}

/* If `record` (8-aligned, in [lo, hi)) is the frame record of a signal frame, the interrupted pc.
 * Reads only [lo, record): stack between the walk's first frame and the record. `search` allows
 * the slow downward search (when the return address is known to be the trampoline). */
static inline uintptr_t memtrack_signal_frame_pc(uintptr_t record, uintptr_t lo, int search) {
    if (record < lo + MEMTRACK_SIGFRAME_CONTEXT || (record & 15)) return 0;
    uintptr_t context = record - MEMTRACK_SIGFRAME_CONTEXT;
    for (;;) {
        if (memtrack_sigcontext_at(context, (const uintptr_t *)record)) return ((const uint64_t *)context)[33];
        if (!search || context < lo + 16 || record - context >= MEMTRACK_SIGFRAME_SEARCH) return 0;
        context -= 16;
    }
}

#endif
