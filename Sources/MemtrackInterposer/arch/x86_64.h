/* arch/x86_64.h: the x86-64 side of arch.h (System V psABI). */
#ifndef MEMTRACK_ARCH_X86_64_H
#define MEMTRACK_ARCH_X86_64_H

#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>

#define MEMTRACK_ARCH_NAME "x86_64"
#define memtrack_cpu_relax() __builtin_ia32_pause()
#define MEMTRACK_RED_ZONE 128          /* below SP, still the function's own */
#define MEMTRACK_R_GLOB_DAT R_X86_64_GLOB_DAT
#define MEMTRACK_R_JUMP_SLOT R_X86_64_JUMP_SLOT

/* rbx, rbp, r12-r15. */
#define MEMTRACK_SAVED_REGISTERS 6
#define memtrack_save_registers(to)                                                          \
    __asm__ volatile("movq %%rbx, 0(%0)\n\tmovq %%rbp, 8(%0)\n\tmovq %%r12, 16(%0)\n\t"     \
                     "movq %%r13, 24(%0)\n\tmovq %%r14, 32(%0)\n\tmovq %%r15, 40(%0)"        \
                     : : "r"(to) : "memory")

#define MEMTRACK_WORLD_REGISTERS 27    /* struct user_regs_struct, as words */
typedef struct user_regs_struct memtrack_regs;
#define MEMTRACK_REGS_SP(r) ((r).rsp)

static inline long memtrack_raw6(long number, long a, long b, long c, long d, long e, long f) {
    long result;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

/* A stopped tracee's registers (0, or -errno). */
static inline long memtrack_get_registers(int tid, memtrack_regs *registers) {
    return memtrack_raw6(SYS_ptrace, PTRACE_GETREGS, tid, 0, (long)registers, 0, 0);
}

/* A system call that returned `interrupted` (EINTR) only because of our interrupt is made to
 * restart: its result becomes `restart` (ERESTARTNOHAND) while the tracee is stopped, and the
 * kernel restarts it on the way out. `except` is never restarted (close). */
static inline void memtrack_restart_interrupted(int tid, long interrupted, long restart, long except) {
    memtrack_regs registers;
    if (memtrack_get_registers(tid, &registers) == 0 && (long)registers.orig_rax >= 0 &&
        (long)registers.rax == interrupted && (long)registers.orig_rax != except) {
        registers.rax = (unsigned long long)restart;
        memtrack_raw6(SYS_ptrace, PTRACE_SETREGS, tid, 0, (long)&registers, 0, 0);
    }
}


/* Whether a thread blocked in system call `number` must be left running by the leak check:
 * none here, since memtrack_restart_interrupted turns every EINTR our interrupt causes into a
 * restart. */
#define MEMTRACK_INTERRUPT_MAY_SHOW 0
#define memtrack_interrupt_would_show(number) 0

/* Signal frames in the frame-pointer walk (unwind.c's fallback, built on x86-64 only for its
 * test): not recognised there; the DWARF walk steps through __restore_rt itself. */
static inline uintptr_t memtrack_signal_frame_pc(uintptr_t record, uintptr_t lo, int search) {
    (void)record; (void)lo; (void)search;
    return 0;
}

#endif
