/* arch.h: what differs between the processors the interposer supports, in one place per
 * processor (arch/x86_64.h, arch/aarch64.h), behind one set of names:
 *
 *   MEMTRACK_ARCH_NAME            the ELF machine's name, as written in the modules record
 *   memtrack_cpu_relax()          the spin-wait hint
 *   MEMTRACK_RED_ZONE             bytes below SP a function may still use (the ABI's)
 *   MEMTRACK_SAVED_REGISTERS      callee-saved registers the leak check reads as roots
 *   memtrack_save_registers(a)    stores them into uint64_t a[MEMTRACK_SAVED_REGISTERS]
 *   MEMTRACK_WORLD_REGISTERS      general registers of a stopped thread, as words
 *   MEMTRACK_R_GLOB_DAT, MEMTRACK_R_JUMP_SLOT   the GOT relocations deepbind.c rewrites
 *   memtrack_raw6()               a system call without libc (no errno: stopworld.c's tracer)
 *   memtrack_get_registers(), memtrack_restart_interrupted()   ptrace register access
 *   memtrack_interrupt_would_show(nr)  a blocked system call the leak check must not interrupt
 *   memtrack_signal_frame_pc()    the interrupted pc of a signal frame (frame-pointer walk)
 * and for the DWARF unwinder (unwind.c):
 *   MEMTRACK_DW_FP, MEMTRACK_DW_SP      DWARF numbers of the frame and stack pointers
 *   MEMTRACK_RA_IN_REGISTER             whether a return address can still be in a register
 *   MEMTRACK_RA_PACKED_FROM_FP          how the cache packs the return address's offset
 *   memtrack_code_address(a)            a saved return address without its signature
 *   memtrack_word16, memtrack_load16/store16/zero16   cache entries a handler never sees torn
 *   memtrack_thread_pointer()           the top of the thread's stack block
 *   MEMTRACK_SIGRETURN_BYTES, memtrack_is_sigreturn(code)   the signal trampoline's code
 *   MEMTRACK_SIGFRAME_SELF_CHECKED      whether a frame without CFI may be a signal frame
 *   memtrack_signal_frame(sp, lo, hi, out)   the interrupted registers of a signal frame
 *   MEMTRACK_UNWIND_ENTRY(name, from)   the entry stub: the caller's pc, sp and fp
 *
 * Processors without a header here do not build: add one rather than #ifdefs elsewhere. */
#ifndef MEMTRACK_ARCH_H
#define MEMTRACK_ARCH_H

#if defined(__x86_64__)
#include "arch/x86_64.h"
#elif defined(__aarch64__)
#include "arch/aarch64.h"
#else
#error "memtrack: unsupported processor (x86-64 and aarch64 are supported; see arch.h)"
#endif

#endif
