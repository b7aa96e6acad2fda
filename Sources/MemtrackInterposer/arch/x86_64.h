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

/* ---- The DWARF unwinder (unwind.c) ----
 * DWARF register numbers of the psABI: the frame pointer rbp, the stack pointer rsp. */
#define MEMTRACK_DW_FP 6
#define MEMTRACK_DW_SP 7
/* A call pushes the return address: at every return address it is on the stack (CFA - 8), so
 * the walk never reads it from a register, and its offset packs on its own in 8 bits. */
#define MEMTRACK_RA_IN_REGISTER 0
#define MEMTRACK_RA_PACKED_FROM_FP 0
/* Return addresses are plain addresses (no pointer authentication). */
#define memtrack_code_address(a) (a)
/* A signal trampoline is found by its code (note_signal_return) before its frame is read. */
#define MEMTRACK_SIGFRAME_SELF_CHECKED 0

/* The per-thread rule cache moves 16-byte entries with one SSE instruction: compilers split a
 * vector load into two scalar ones, and a signal handler unwinding on this thread between them
 * could see the key of one rule and the offsets of another. */
#include <emmintrin.h>
typedef __m128i memtrack_word16;
static inline memtrack_word16 memtrack_load16(const void *from) {
    __m128i v;
    __asm__ volatile("movdqa %1, %0" : "=x"(v) : "m"(*(const __m128i *)from));
    return v;
}
static inline void memtrack_store16(void *to, memtrack_word16 v) {
    __asm__ volatile("movdqa %1, %0" : "=m"(*(__m128i *)to) : "x"(v));
}
#define memtrack_zero16() _mm_setzero_si128()

/* The thread pointer, which glibc keeps at %fs:0: its struct pthread, at the top of the
 * thread's stack block. */
static inline uintptr_t memtrack_thread_pointer(void) {
    uintptr_t self;
    __asm__("movq %%fs:0, %0" : "=r"(self));
    return self;
}

/* The signal trampoline, glibc's __restore_rt: mov $15, %rax (rt_sigreturn); syscall. */
#define MEMTRACK_SIGRETURN_BYTES 9
static inline int memtrack_is_sigreturn(const uint8_t *code) {
    static const uint8_t restore_rt[MEMTRACK_SIGRETURN_BYTES] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    for (int i = 0; i < MEMTRACK_SIGRETURN_BYTES; i++)
        if (code[i] != restore_rt[i]) return 0;
    return 1;
}

/* The interrupted registers of the signal frame a handler returns through, read from the
 * ucontext the kernel put at the handler's CFA: uc_flags, uc_link, uc_stack (24 bytes), then
 * uc_mcontext.gregs[], indexed by REG_RBP (10), REG_RSP (15), REG_RIP (16). The link register
 * is not used here (lr stays 0). 0 when the frame lies outside [lo, hi). */
struct memtrack_interrupted { uintptr_t pc, sp, fp, lr; };
static inline int memtrack_signal_frame(uintptr_t sp, uintptr_t lo, uintptr_t hi, struct memtrack_interrupted *out) {
    uintptr_t gregs = sp + 40;
    if (gregs < lo || gregs + 17 * 8 > hi || (gregs & 7)) return 0;
    const uintptr_t *registers = (const uintptr_t *)gregs;
    out->pc = registers[16], out->sp = registers[15], out->fp = registers[10], out->lr = 0;
    return 1;
}

/* The entry stub of memtrack_unwind: the caller's exact pc (our return address), sp (once we
 * have returned) and frame pointer, then a tail jump so that `from` returns to our caller. */
#ifdef __CET__
#define MEMTRACK_ENDBR "endbr64\n"
#else
#define MEMTRACK_ENDBR ""
#endif
#define MEMTRACK_UNWIND_ENTRY(name, from)                                                    \
    __asm__(".text\n.globl " name "\n.hidden " name "\n.type " name ", @function\n"           \
            ".p2align 4\n" name ":\n.cfi_startproc\n" MEMTRACK_ENDBR                          \
            "movq (%rsp), %rdx\n"       /* pc: our return address, inside the caller */       \
            "leaq 8(%rsp), %rcx\n"      /* sp: the caller's rsp once we have returned */      \
            "movq %rbp, %r8\n"          /* fp: untouched so far, so the caller's */           \
            "jmp " from "\n.cfi_endproc\n.size " name ", .-" name "\n")

#endif
