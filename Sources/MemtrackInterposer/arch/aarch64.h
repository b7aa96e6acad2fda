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


/* ---- The DWARF unwinder (unwind.c) ----
 * DWARF register numbers of AAPCS64: the frame pointer x29, the stack pointer sp (31). The
 * return address column is the link register x30 (the CIE says so). */
#define MEMTRACK_DW_FP 29
#define MEMTRACK_DW_SP 31
/* bl leaves the return address in x30: a function saves it (with x29, usually as a pair at the
 * bottom of its frame) before it calls, so at a return address it is on the stack, anywhere in
 * a frame of any size (gcc 12: x30 at CFA - 70024 in a function with a 70000-byte array). Only
 * the code a signal interrupted may still have it in x30, read from the signal frame. So the
 * packed rule keeps the return address's offset relative to x29's (8 apart in a pair), or
 * alone in x29's field when x29 is not saved. */
#define MEMTRACK_RA_IN_REGISTER 1
#define MEMTRACK_RA_PACKED_FROM_FP 1
/* Return addresses signed with pointer authentication (-mbranch-protection) carry the code
 * in the bits above the 48-bit user address space. */
#define memtrack_code_address(a) ((a) & (((uintptr_t)1 << 48) - 1))
/* qemu-user's trampoline lies in no object (no CFI, code not known to be mapped): a frame with
 * no CFI is read as a signal frame when its sigcontext's FPSIMD record is where it must be. */
#define MEMTRACK_SIGFRAME_SELF_CHECKED 1

/* The per-thread rule cache's 16-byte entries. A load pair is one instruction (an interrupt
 * completes or restarts it); a store writes the key last, after clearing it, so a signal
 * handler on this thread sees the old entry, an empty one or the new one, never a mix. */
typedef unsigned __int128 memtrack_word16;
static inline memtrack_word16 memtrack_load16(const void *from) {
    uint64_t lo, hi;
    __asm__ volatile("ldp %0, %1, [%2]" : "=r"(lo), "=r"(hi) : "r"(from) : "memory");
    return (memtrack_word16)hi << 64 | lo;
}
static inline void memtrack_store16(void *to, memtrack_word16 v) {
    __asm__ volatile("str xzr, [%0]\n\tstr %2, [%0, #8]\n\tstr %1, [%0]"
                     : : "r"(to), "r"((uint64_t)v), "r"((uint64_t)(v >> 64)) : "memory");
}
#define memtrack_zero16() ((memtrack_word16)0)

/* The thread pointer (TPIDR_EL0): glibc's TCB, right above the struct pthread at the top of the
 * thread's stack block (static TLS above it), so [sp, thread pointer) is the live stack. */
static inline uintptr_t memtrack_thread_pointer(void) {
    return (uintptr_t)__builtin_thread_pointer();
}

/* The signal trampoline (the vDSO's __kernel_rt_sigreturn, qemu-user's page):
 * mov x8, #139 (rt_sigreturn); svc #0. */
#define MEMTRACK_SIGRETURN_BYTES 8
static inline int memtrack_is_sigreturn(const uint8_t *code) {
    static const uint8_t sigreturn[MEMTRACK_SIGRETURN_BYTES] = {0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4};
    for (int i = 0; i < MEMTRACK_SIGRETURN_BYTES; i++)
        if (code[i] != sigreturn[i]) return 0;
    return 1;
}

/* The interrupted registers of the signal frame a handler returns through. The handler's CFA
 * is the sp the kernel gave it: the rt_sigframe, siginfo (128 bytes) then the ucontext, whose
 * uc_mcontext at 176 holds x0-x30, sp, pc (the layout above, MEMTRACK_SIGFRAME_CONTEXT). The
 * FPSIMD record's header must start __reserved. The interrupted code may be a leaf whose
 * return address is still in x30 (lr). 0 when it is not there or outside [lo, hi). */
struct memtrack_interrupted { uintptr_t pc, sp, fp, lr; };
static inline int memtrack_signal_frame(uintptr_t sp, uintptr_t lo, uintptr_t hi, struct memtrack_interrupted *out) {
    uintptr_t context = sp + 128 + 176;
    if (context < lo || context + 37 * 8 > hi || (context & 15)) return 0;
    const uint64_t *w = (const uint64_t *)context;   /* fault_address, then x0..x30 at 1..31 */
    if (w[36] != MEMTRACK_FPSIMD_HEADER) return 0;
    out->fp = w[30], out->lr = w[31], out->sp = w[32], out->pc = w[33];
    return 1;
}

/* The entry stub of memtrack_unwind: the caller's exact pc (x30, our return address), sp and
 * frame pointer (untouched by a call), then a tail branch so that `from` returns to our caller.
 * bti c (a hint: a no-op without BTI) lets indirect calls land here in BTI-enforcing programs. */
#define MEMTRACK_UNWIND_ENTRY(name, from)                                                    \
    __asm__(".text\n.globl " name "\n.hidden " name "\n.type " name ", %function\n"           \
            ".p2align 4\n" name ":\n.cfi_startproc\n"                                         \
            "hint #34\n"                /* bti c */                                           \
            "mov x2, x30\n"             /* pc: our return address, inside the caller */       \
            "mov x3, sp\n"              /* sp: the caller's */                                \
            "mov x4, x29\n"             /* fp: the caller's */                                \
            "b " from "\n.cfi_endproc\n.size " name ", .-" name "\n")

#endif
