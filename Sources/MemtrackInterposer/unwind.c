/* memtrack: call-stack capture for every allocation.
 *
 * Why not backtrace() / _Unwind_Backtrace: they re-interpret the DWARF CFI of every frame on
 * every call (~600 ns for 4 frames, ~940 ns for 8), they may allocate or take the loader lock
 * on first use, and they would make libmemtrack.so depend on libgcc_s.
 * Why not a frame-pointer walk: on x86_64 Debian's libc, libstdc++ and most -O2 user code are
 * built without frame pointers, so the rbp chain skips or invents frames (on aarch64 gcc keeps
 * frame records at -O2, but not with -fomit-frame-pointer).
 *
 * Design (x86_64 and aarch64 Linux, glibc >= 2.35; what differs is in arch.h, and the names
 * here say rsp and rbp for the stack and frame pointers of both, sp and x29 on aarch64):
 *  - An assembly entry stub captures the caller's exact pc, rsp and rbp (no compiler guesswork
 *    about our own frame layout), then tail-jumps into the C walker.
 *  - A frame is described by three rules, which is all that gcc and clang emit at call sites:
 *    how to get the CFA (rsp+off, rbp+off, or *(rbp+off) for stack-realigned functions),
 *    where the caller's rbp is saved (unchanged, at CFA+off, or at rbp+off), and where the
 *    return address is saved (CFA+off, in practice -8). Other registers are not needed,
 *    because a CFA rule in terms of anything but rsp/rbp never occurs at a call site.
 *  - The rules of a return address are found through _dl_find_object() (lock-free and
 *    async-signal-safe, unlike dl_iterate_phdr), the binary-search table of .eh_frame_hdr,
 *    and a small interpreter of the CIE/FDE CFA program run up to that address.
 *  - The result is cached per thread in a direct-mapped cache keyed by return address, so a
 *    warm frame costs one 16-byte load, one compare and two stack loads. Per-thread means no
 *    lock and no atomics; entries are read and written with single 16-byte vector moves so a
 *    signal handler that unwinds on the same thread can never see a half-written entry.
 *  - Every stack read is checked against the bounds of the stack we are running on (see the
 *    "stack bounds" section), the CFA must strictly increase and stay 8-aligned, so corrupt
 *    stacks or wrong rules end the walk instead of faulting.
 *  - The walk stops (without error) at: pc 0, an address with no FDE, an undefined return
 *    address (_start, clone), a signal trampoline (CIE augmentation "S"), any rule outside
 *    the supported set, a CFA that does not increase, or max_frames.
 *
 * aarch64 differs in three ways. A return address sits anywhere in its frame (gcc saves x29
 * and x30 as a pair at the frame's bottom), so its offset is packed relative to x29's. The
 * code a signal interrupted may be a leaf with its return address still in x30 and no frame:
 * the signal frame's x30 is used there, and only there. qemu-user's trampoline has no CFI: a
 * frame without CFI whose signal frame checks out (arch.h) is stepped through.
 *
 * Other architectures get a bounded frame-pointer walk (last section).
 *
 * Layer: index (it needs nothing but libc and the loader).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "unwind.h"
#include "sys.h"

#include <stddef.h>
#include <string.h>

// ---- generation counter (shared by both implementations) ----

/* Bumped by memtrack_unwind_invalidate(); each thread compares it with the generation its
 * cache was filled under. Relaxed atomics: a walk racing with a dlclose may use a stale rule
 * once, which the stack bounds checks make harmless. */
static unsigned g_unwind_generation;

void memtrack_unwind_invalidate(void)
{
    __atomic_fetch_add(&g_unwind_generation, 1, __ATOMIC_RELAXED);
}

/* MEMTRACK_UNWIND_FORCE_FP builds the frame-pointer fallback here too, to test it. */
#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__linux__) && defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) \
    && !defined(MEMTRACK_UNWIND_FORCE_FP)

#include "arch.h"   /* registers, the cache's 16-byte moves, the stack's top, signal frames */
#include <dlfcn.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

// ---- constants ----

/* DWARF register numbers (arch.h): the frame pointer (rbp, x29) and the stack pointer. The
 * names below say rbp and rsp for both. */
enum { DW_REG_RBP = MEMTRACK_DW_FP, DW_REG_RSP = MEMTRACK_DW_SP };

/* 1024 entries x 16 bytes = 16 KiB of static TLS per thread. glibc carves static TLS out of
 * every thread's stack, so a bigger cache would hurt programs that create threads with small
 * stacks; 1024 return addresses cover the hot allocation paths of typical programs. */
#define UNWIND_CACHE_BITS 10
#define UNWIND_CACHE_SIZE (1u << UNWIND_CACHE_BITS)

/* The kernel keeps at least 128 MiB free below the top of the main stack (mmap_base is placed
 * at least MIN_GAP = 128 MiB + stack randomisation below TASK_SIZE), so any address between
 * our rsp and __libc_stack_end, when they are less than this apart, is main-stack memory. */
#define MAIN_STACK_WINDOW ((uintptr_t)128 << 20)

/* glibc puts struct pthread (the thread pointer) at the very top of every thread's stack
 * block, also for stacks given with pthread_attr_setstack, so [rsp, pthread_self()) is the
 * live part of the stack. The window bounds how far below it we believe that: default thread
 * stacks are 8 MiB (RLIMIT_STACK) and deeper stacks are rare; past it we use the safe
 * one-page fallback rather than risk walking into an unrelated mapping. */
#define THREAD_STACK_WINDOW ((uintptr_t)64 << 20)

/* A page is the unit of mapping: the page holding rsp is certainly mapped. */
#define PAGE_SIZE_MIN 4096u

/* remember_state nesting seen in practice is 1 (gcc's epilogue duplication); 8 is plenty. */
#define CFA_STATE_STACK 8

// ---- rules ----

enum cfa_kind {
    CFA_RSP = 0,        // CFA = rsp + cfa_off
    CFA_RBP = 1,        // CFA = rbp + cfa_off
    CFA_DEREF_RBP = 2,  // CFA = *(rbp + cfa_off)  (gcc's DW_OP_breg6 off; DW_OP_deref, after realigning)
    CFA_STOP = 3,       // end of the walk at this pc
};

enum rbp_kind {
    RBP_SAME = 0,       // rbp is unchanged in the caller
    RBP_AT_CFA = 1,     // caller's rbp = *(CFA + rbp_off)
    RBP_AT_RBP = 2,     // caller's rbp = *(rbp + rbp_off)  (gcc's DW_OP_breg6 off, after realigning)
};

/* The unpacked rule for one return address. */
struct frame_rule {
    int cfa_kind;
    int rbp_kind;
    int64_t cfa_off;
    int64_t rbp_off;
    int64_t ra_off;     // return address is at CFA + ra_off
    int ra_in_register; // aarch64: the return address is still in x30 (a leaf, after a signal)
    int no_cfi;         // no CFI, or a signal frame's: a signal trampoline may be here
};

/* A rule packed into 16 bytes, the cache slot format, so that a slot moves whole (see
 * load16/store16):
 *   key  = pc (bits 0-47; user-space addresses have 47 or 48 bits) | ra << 48 | kinds << 56
 *   offs = cfa_off (bits 0-31) | rbp_off << 32      (all offsets signed)
 * kinds = cfa_kind | rbp_kind << 2 | KEY_RA_IN_REGISTER | KEY_NO_CFI. ra is ra_off, or on
 * aarch64 (MEMTRACK_RA_PACKED_FROM_FP) ra_off - rbp_off, with rbp_off = ra_off when rbp is
 * not saved. pc 0 never occurs, so an all-zero slot is empty. */
#define KEY_PC_MASK (((uint64_t)1 << 48) - 1)
#define KEY_RA_IN_REGISTER ((uint64_t)1 << 60)
#define KEY_NO_CFI ((uint64_t)1 << 61)

union cache_entry {
    struct {
        uint64_t key;
        uint64_t offs;
    } f;
    memtrack_word16 v;
};

_Static_assert(sizeof(union cache_entry) == 16, "cache entry must be one 16-byte word");

static __thread union cache_entry t_cache[UNWIND_CACHE_SIZE]
    __attribute__((tls_model("initial-exec"), aligned(16)));
static __thread unsigned t_cache_generation __attribute__((tls_model("initial-exec")));

/* The first thread to unwind, in practice the main thread, gets a cache 16 times larger, out
 * of static TLS: a single-threaded compiler or interpreter has thousands of hot return
 * addresses (cc1 recomputed rules in 8 % of its samples with 1,024 entries), and a big thread
 * cache in TLS would be carved out of every thread's stack. 256 KiB of .bss, untouched until
 * used. t_table is the cache this thread uses, t_shift what cache_index shifts by. */
#define MAIN_CACHE_BITS 14
static union cache_entry main_cache[1u << MAIN_CACHE_BITS] __attribute__((aligned(64)));
static int main_cache_taken;
static __thread union cache_entry *t_table __attribute__((tls_model("initial-exec")));
/* In front of the main thread's cache, a small one (16 KiB) that its hottest return addresses
 * keep in the first-level data cache. 1,024 entries against 256: perl 0.963 and cc1 0.962 of
 * the time (medians of per-pair ratios, 12 and 6 pairs), python-malloc the same. */
#define NEAR_CACHE_BITS 10
static union cache_entry main_near_cache[1u << NEAR_CACHE_BITS] __attribute__((aligned(64)));
static __thread union cache_entry *t_near __attribute__((tls_model("initial-exec")));
static __thread unsigned t_table_bits __attribute__((tls_model("initial-exec")));

// ---- reading CFI ----

/* CFI lives in the read-only segments of loaded objects, which stay mapped while the object
 * is loaded; it is trusted like libgcc trusts it. The end pointers only protect against
 * running off a malformed record, not against unmapped memory. */

struct reader {
    const uint8_t *p;
    const uint8_t *end;
    int bad;            // set once anything was out of range or unsupported
};

static uint64_t rd_u8(struct reader *r)
{
    if (r->p + 1 > r->end) { r->bad = 1; return 0; }
    return *r->p++;
}

static uint64_t rd_fixed(struct reader *r, int size)
{
    uint64_t v = 0;
    if (r->p + size > r->end) { r->bad = 1; return 0; }
    memcpy(&v, r->p, (size_t)size);   // little endian: the low bytes come first
    r->p += size;
    return v;
}

static uint64_t rd_uleb(struct reader *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
}

static int64_t rd_sleb(struct reader *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

/* DW_EH_PE_* pointer encodings. */
enum {
    PE_absptr = 0x00, PE_uleb128 = 0x01, PE_udata2 = 0x02, PE_udata4 = 0x03, PE_udata8 = 0x04,
    PE_sleb128 = 0x09, PE_sdata2 = 0x0a, PE_sdata4 = 0x0b, PE_sdata8 = 0x0c,
    PE_pcrel = 0x10, PE_datarel = 0x30, PE_aligned = 0x50, PE_indirect = 0x80, PE_omit = 0xff,
};

/* Reads a pointer with encoding enc. datarel is resolved against data_base: inside
 * .eh_frame_hdr the LSB spec defines it as the start of .eh_frame_hdr, and x86_64 .eh_frame
 * records never use datarel. Indirect pointers are returned undereferenced: only the
 * personality uses them, and we only skip it. */
static uintptr_t rd_encoded(struct reader *r, uint8_t enc, uintptr_t data_base)
{
    if (enc == PE_omit)
        return 0;
    uintptr_t field = (uintptr_t)r->p;
    uint64_t v;
    if ((enc & 0x70) == PE_aligned) {
        uintptr_t aligned = (field + 7) & ~(uintptr_t)7;   // aligned means to pointer size
        r->p = (const uint8_t *)aligned;
        return (uintptr_t)rd_fixed(r, 8);
    }
    switch (enc & 0x0f) {
    case PE_absptr: v = rd_fixed(r, 8); break;
    case PE_uleb128: v = rd_uleb(r); break;
    case PE_udata2: v = rd_fixed(r, 2); break;
    case PE_udata4: v = rd_fixed(r, 4); break;
    case PE_udata8: v = rd_fixed(r, 8); break;
    case PE_sleb128: v = (uint64_t)rd_sleb(r); break;
    case PE_sdata2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break;
    case PE_sdata4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break;
    case PE_sdata8: v = rd_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0: break;
    case PE_pcrel: v += field; break;
    case PE_datarel: v += data_base; break;
    default: r->bad = 1; return 0;   // textrel/funcrel: never used on x86_64
    }
    return (uintptr_t)v;
}

// ---- finding the FDE ----

/* Returns the FDE covering pc (a byte inside the function) or NULL. */
static const uint8_t *find_fde(uintptr_t pc)
{
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)pc, &dlfo) != 0 || dlfo.dlfo_eh_frame == NULL)
        return NULL;    // not in any loaded object (JIT code), or no PT_GNU_EH_FRAME
    const uint8_t *hdr = dlfo.dlfo_eh_frame;
    if (hdr[0] != 1)
        return NULL;    // .eh_frame_hdr version 1 is the only one ever defined
    uint8_t eh_frame_ptr_enc = hdr[1], fde_count_enc = hdr[2], table_enc = hdr[3];
    /* The header's fields have no explicit length; 16 bytes covers two 8-byte pointers. */
    struct reader r = { hdr + 4, hdr + 4 + 16, 0 };
    (void)rd_encoded(&r, eh_frame_ptr_enc, (uintptr_t)hdr);
    uintptr_t count = rd_encoded(&r, fde_count_enc, (uintptr_t)hdr);
    /* GNU ld, gold, lld and mold all emit datarel|sdata4 tables; anything else would need a
     * linear scan of .eh_frame, which we do not do (the walk just stops here). */
    if (r.bad || table_enc != (PE_datarel | PE_sdata4) || count == 0)
        return NULL;
    const int32_t *table = (const int32_t *)(const void *)r.p;
    intptr_t rel = (intptr_t)(pc - (uintptr_t)hdr);
    /* Binary search for the last entry whose initial location is <= pc. */
    uintptr_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uintptr_t mid = lo + (hi - lo) / 2;
        if ((intptr_t)table[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    if ((intptr_t)table[2 * lo] > rel)
        return NULL;    // pc lies before the first function with CFI
    return hdr + table[2 * lo + 1];
}

// ---- CIE / FDE parsing and the CFA program ----

enum { REG_SAME, REG_AT_CFA, REG_AT_RBP, REG_UNDEF, REG_BAD };

struct reg_rule { int kind; int64_t off; };

struct cfa_state {
    int cfa_kind;       // CFA_RSP / CFA_RBP / CFA_DEREF_RBP, or -1 if unsupported
    int64_t cfa_off;    // for CFA_DEREF_RBP: the offset inside the expression
    struct reg_rule rbp, ra;
};

struct cie_info {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int signal_frame;
    int has_z;
    const uint8_t *insns, *insns_end;
};

static int parse_cie(const uint8_t *cie, struct cie_info *ci)
{
    uint32_t len;
    memcpy(&len, cie, 4);
    if (len == 0 || len == 0xffffffffu)
        return 0;       // terminator, or a 64-bit length (never produced for .eh_frame on Linux)
    struct reader r = { cie + 4, cie + 4 + len, 0 };
    if (rd_fixed(&r, 4) != 0)
        return 0;       // CIE id must be 0 in .eh_frame
    uint64_t version = rd_u8(&r);
    if (version != 1 && version != 3 && version != 4)
        return 0;
    const char *aug = (const char *)r.p;
    size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
    r.p += aug_len + 1;
    if (version == 4) {
        (void)rd_u8(&r);  // address_size
        (void)rd_u8(&r);  // segment_size
    }
    ci->code_align = rd_uleb(&r);
    ci->data_align = rd_sleb(&r);
    ci->ra_reg = version == 1 ? rd_u8(&r) : rd_uleb(&r);
    ci->fde_enc = PE_absptr;
    ci->signal_frame = 0;
    ci->has_z = aug[0] == 'z';
    if (aug[0] != '\0' && aug[0] != 'z')
        return 0;       // "eh" and other pre-'z' augmentations: cannot find the instructions
    if (ci->has_z) {
        uint64_t aug_data_len = rd_uleb(&r);
        const uint8_t *aug_end = r.p + aug_data_len;
        if (aug_end > r.end || r.bad)
            return 0;
        for (size_t i = 1; i < aug_len && !r.bad; i++) {
            switch (aug[i]) {
            case 'R': ci->fde_enc = (uint8_t)rd_u8(&r); break;
            case 'L': (void)rd_u8(&r); break;                       // LSDA encoding
            case 'P': { uint8_t e = (uint8_t)rd_u8(&r); (void)rd_encoded(&r, e, 0); break; }
            case 'S': ci->signal_frame = 1; break;
            case 'B': break;                                        // AArch64 BTI; harmless
            default: i = aug_len; break;  // unknown: 'z' lets us skip the rest safely
            }
        }
        r.p = aug_end;
    }
    if (r.bad || ci->code_align == 0)
        return 0;
    ci->insns = r.p;
    ci->insns_end = r.end;
    return 1;
}

/* Recognises the only expressions gcc emits for frames that call: after realigning the stack,
 * "DW_OP_breg6 <off>; DW_OP_deref" for the CFA and "DW_OP_breg6 <off>" for rbp.
 * Returns 1 and the offset if the block [p, end) is exactly breg6 (+ deref if want_deref). */
static int match_rbp_expr(const uint8_t *p, const uint8_t *end, int want_deref, int64_t *off)
{
    struct reader r = { p, end, 0 };
    if (rd_u8(&r) != 0x70 + DW_REG_RBP)  // DW_OP_breg6 (rbp); breg29 on aarch64, never seen
        return 0;
    *off = rd_sleb(&r);
    if (want_deref && rd_u8(&r) != 0x06)  // DW_OP_deref
        return 0;
    return !r.bad && r.p == end;
}

static void set_reg_rule(struct cfa_state *s, uint64_t reg, uint64_t ra_reg, int kind, int64_t off)
{
    struct reg_rule rule = { kind, off };
    if (reg == DW_REG_RBP)
        s->rbp = rule;
    if (reg == ra_reg)
        s->ra = rule;
}

static void restore_reg_rule(struct cfa_state *s, const struct cfa_state *init, uint64_t reg,
                             uint64_t ra_reg)
{
    if (reg == DW_REG_RBP)
        s->rbp = init->rbp;
    if (reg == ra_reg)
        s->ra = init->ra;
}

/* Runs the CFA program [p, end) from location *loc while *loc < target. init is the state
 * after the CIE's initial instructions (for DW_CFA_restore), NULL while running those.
 * Returns 0 on an unsupported opcode or malformed program. */
static int run_cfa_program(const uint8_t *p, const uint8_t *end, const struct cie_info *ci,
                           uintptr_t *loc, uintptr_t target, struct cfa_state *s,
                           const struct cfa_state *init)
{
    struct cfa_state saved[CFA_STATE_STACK];
    int depth = 0;
    struct reader r = { p, end, 0 };
    uint64_t ra = ci->ra_reg;
    while (r.p < r.end && *loc < target) {
        uint8_t op = (uint8_t)rd_u8(&r);
        uint64_t reg, u;
        int64_t off = 0;
        const uint8_t *block;
        switch (op >> 6) {
        case 1:  // DW_CFA_advance_loc
            *loc += (op & 0x3f) * ci->code_align;
            continue;
        case 2:  // DW_CFA_offset
            off = (int64_t)rd_uleb(&r) * ci->data_align;
            set_reg_rule(s, op & 0x3f, ra, REG_AT_CFA, off);
            continue;
        case 3:  // DW_CFA_restore
            if (!init)
                return 0;
            restore_reg_rule(s, init, op & 0x3f, ra);
            continue;
        }
        switch (op) {
        case 0x00:  // DW_CFA_nop
            break;
        case 0x01:  // DW_CFA_set_loc
            *loc = rd_encoded(&r, ci->fde_enc, 0);
            break;
        case 0x02: *loc += rd_fixed(&r, 1) * ci->code_align; break;  // DW_CFA_advance_loc1
        case 0x03: *loc += rd_fixed(&r, 2) * ci->code_align; break;  // DW_CFA_advance_loc2
        case 0x04: *loc += rd_fixed(&r, 4) * ci->code_align; break;  // DW_CFA_advance_loc4
        case 0x05:  // DW_CFA_offset_extended
            reg = rd_uleb(&r);
            off = (int64_t)rd_uleb(&r) * ci->data_align;
            set_reg_rule(s, reg, ra, REG_AT_CFA, off);
            break;
        case 0x06:  // DW_CFA_restore_extended
            reg = rd_uleb(&r);
            if (!init)
                return 0;
            restore_reg_rule(s, init, reg, ra);
            break;
        case 0x07:  // DW_CFA_undefined
            set_reg_rule(s, rd_uleb(&r), ra, REG_UNDEF, 0);
            break;
        case 0x08:  // DW_CFA_same_value
            set_reg_rule(s, rd_uleb(&r), ra, REG_SAME, 0);
            break;
        case 0x09:  // DW_CFA_register: rbp or RA kept in another register is not tracked
            reg = rd_uleb(&r);
            (void)rd_uleb(&r);
            set_reg_rule(s, reg, ra, REG_BAD, 0);
            break;
        case 0x0a:  // DW_CFA_remember_state
            if (depth == CFA_STATE_STACK)
                return 0;
            saved[depth++] = *s;
            break;
        case 0x0b:  // DW_CFA_restore_state
            if (depth == 0)
                return 0;
            *s = saved[--depth];
            break;
        case 0x0c:  // DW_CFA_def_cfa
            reg = rd_uleb(&r);
            s->cfa_off = (int64_t)rd_uleb(&r);
            s->cfa_kind = reg == DW_REG_RSP ? CFA_RSP : reg == DW_REG_RBP ? CFA_RBP : -1;
            break;
        case 0x0d:  // DW_CFA_def_cfa_register
            reg = rd_uleb(&r);
            s->cfa_kind = reg == DW_REG_RSP ? CFA_RSP : reg == DW_REG_RBP ? CFA_RBP : -1;
            break;
        case 0x0e:  // DW_CFA_def_cfa_offset
            s->cfa_off = (int64_t)rd_uleb(&r);
            break;
        case 0x0f:  // DW_CFA_def_cfa_expression
            u = rd_uleb(&r);
            block = r.p;
            r.p += u;
            if (r.p > r.end)
                return 0;
            s->cfa_kind = match_rbp_expr(block, r.p, 1, &off) ? CFA_DEREF_RBP : -1;
            s->cfa_off = off;
            break;
        case 0x10:  // DW_CFA_expression
            reg = rd_uleb(&r);
            u = rd_uleb(&r);
            block = r.p;
            r.p += u;
            if (r.p > r.end)
                return 0;
            if (match_rbp_expr(block, r.p, 0, &off))
                set_reg_rule(s, reg, ra, REG_AT_RBP, off);
            else
                set_reg_rule(s, reg, ra, REG_BAD, 0);
            break;
        case 0x11:  // DW_CFA_offset_extended_sf
            reg = rd_uleb(&r);
            off = rd_sleb(&r) * ci->data_align;
            set_reg_rule(s, reg, ra, REG_AT_CFA, off);
            break;
        case 0x12:  // DW_CFA_def_cfa_sf
            reg = rd_uleb(&r);
            s->cfa_off = rd_sleb(&r) * ci->data_align;
            s->cfa_kind = reg == DW_REG_RSP ? CFA_RSP : reg == DW_REG_RBP ? CFA_RBP : -1;
            break;
        case 0x13:  // DW_CFA_def_cfa_offset_sf
            s->cfa_off = rd_sleb(&r) * ci->data_align;
            break;
        case 0x14:  // DW_CFA_val_offset: a value rule; not emitted for rbp/RA by compilers
        case 0x15:  // DW_CFA_val_offset_sf
            reg = rd_uleb(&r);
            if (op == 0x14) (void)rd_uleb(&r); else (void)rd_sleb(&r);
            set_reg_rule(s, reg, ra, REG_BAD, 0);
            break;
        case 0x16:  // DW_CFA_val_expression
            reg = rd_uleb(&r);
            u = rd_uleb(&r);
            r.p += u;
            if (r.p > r.end)
                return 0;
            set_reg_rule(s, reg, ra, REG_BAD, 0);
            break;
        case 0x2d:  // DW_CFA_AARCH64_negate_ra_state: the saved return address is signed
            break;  // (pointer authentication); memtrack_code_address strips the signature
        case 0x2e:  // DW_CFA_GNU_args_size: only matters for landing pads
            (void)rd_uleb(&r);
            break;
        case 0x2f:  // DW_CFA_GNU_negative_offset_extended
            reg = rd_uleb(&r);
            off = -(int64_t)rd_uleb(&r) * ci->data_align;
            set_reg_rule(s, reg, ra, REG_AT_CFA, off);
            break;
        default:    // vendor opcodes of other architectures, or garbage
            return 0;
        }
        if (r.bad)
            return 0;
    }
    return !r.bad;
}

static void note_signal_return(uintptr_t pc, uintptr_t object_end);

/* Computes the rule for return address ra (the instruction after a call). Never fails:
 * anything it cannot express becomes CFA_STOP. Kept out of line so the warm path of the
 * walk does not pay for this function's large frame (the remember_state stack). */
static __attribute__((noinline)) void compute_rule(uintptr_t ra, struct frame_rule *out)
{
    out->cfa_kind = CFA_STOP;
    out->rbp_kind = RBP_SAME;
    out->cfa_off = out->rbp_off = out->ra_off = 0;
    out->ra_in_register = 0;
    out->no_cfi = 1;

    /* ra - 1 is still inside the calling function even when the call is its last
     * instruction (calls to noreturn functions). */
    const uint8_t *fde = find_fde(ra - 1);
    if (!fde)
        return;         // no_cfi: JIT code, or qemu-user's signal trampoline
    uint32_t len;
    memcpy(&len, fde, 4);
    if (len == 0 || len == 0xffffffffu)
        return;
    struct reader r = { fde + 4, fde + 4 + len, 0 };
    uint32_t cie_delta = (uint32_t)rd_fixed(&r, 4);
    if (cie_delta == 0)
        return;         // that is a CIE, the table was wrong
    struct cie_info ci;
    if (!parse_cie(fde + 4 - cie_delta, &ci))
        return;
    if (ci.signal_frame) {
        /* __restore_rt: its rule is a DWARF expression over the ucontext, which the walk
         * reads itself (step_signal_frame). */
        struct dl_find_object dlfo;
        if (_dl_find_object((void *)ra, &dlfo) == 0)
            note_signal_return(ra, (uintptr_t)dlfo.dlfo_map_end);
        return;
    }
    out->no_cfi = 0;
    uintptr_t pc_begin = rd_encoded(&r, ci.fde_enc, 0);
    uintptr_t pc_range = rd_encoded(&r, ci.fde_enc & 0x0f, 0);  // a length: no pcrel
    if (r.bad || ra - 1 < pc_begin || ra - 1 - pc_begin >= pc_range)
        return;         // the nearest FDE does not cover ra (a gap without CFI)
    if (ci.has_z) {
        uint64_t aug_len = rd_uleb(&r);
        r.p += aug_len;     // LSDA pointer: not needed
        if (r.bad || r.p > r.end)
            return;
    }

    /* The CIE's initial instructions give the state at function entry. */
    struct cfa_state init = { -1, 0, { REG_SAME, 0 }, { REG_SAME, 0 } };
    uintptr_t loc = 0;
    if (!run_cfa_program(ci.insns, ci.insns_end, &ci, &loc, UINTPTR_MAX, &init, NULL))
        return;
    struct cfa_state s = init;
    loc = pc_begin;
    /* Rows whose location is <= ra - 1 apply, i.e. loc < ra, as in libgcc. */
    if (!run_cfa_program(r.p, r.end, &ci, &loc, ra, &s, &init))
        return;

    /* The return address in its register (x30), as it is until the function saves it: only
     * code a signal interrupted is walked at such a pc (the walk checks). */
    int ra_in_register = MEMTRACK_RA_IN_REGISTER && s.ra.kind == REG_SAME;
    if (s.cfa_kind < 0 || (s.ra.kind != REG_AT_CFA && !ra_in_register))
        return;         // unsupported CFA, or RA undefined (outermost frame) / elsewhere
    switch (s.rbp.kind) {
    case REG_SAME: out->rbp_kind = RBP_SAME; break;
    case REG_AT_CFA: out->rbp_kind = RBP_AT_CFA; break;
    case REG_AT_RBP: out->rbp_kind = RBP_AT_RBP; break;
    default: return;    // rbp in another register, or undefined: we would lose track of it
    }
    out->cfa_kind = s.cfa_kind;
    out->cfa_off = s.cfa_off;
    out->rbp_off = s.rbp.off;
    out->ra_off = ra_in_register ? 0 : s.ra.off;
    out->ra_in_register = ra_in_register;
}

// ---- per-thread rule cache ----

static inline unsigned cache_index(uintptr_t pc, unsigned bits)
{
    /* Fibonacci hashing. An xor of the pc's 10-bit pieces put three of python3.11's hottest
     * return addresses (0x53aae2, 0x54a720, 0x575bdf: non-PIE, low addresses) in one slot,
     * and half of its 3.5M walks recomputed a rule. */
    return (unsigned)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* A 16-byte load and store that a signal handler on this thread never sees half done (a
 * half could pair the key of one rule with the offsets of another): arch.h's. */
static inline memtrack_word16 load16(const union cache_entry *e)
{
    return memtrack_load16(&e->v);
}

static inline void store16(union cache_entry *e, memtrack_word16 v)
{
    memtrack_store16(&e->v, v);
}

/* Packs a rule; returns 0 if it does not fit (then it is used unpacked and not cached). */
static int pack_rule(uintptr_t pc, const struct frame_rule *r, union cache_entry *e)
{
    int64_t rbp_off = r->rbp_off, ra = r->ra_off;
    if (MEMTRACK_RA_PACKED_FROM_FP) {
        if (r->rbp_kind == RBP_SAME)
            rbp_off = r->ra_off;    // the field is free: the offset goes there whole
        ra = r->ra_off - rbp_off;
    }
    if ((pc & ~KEY_PC_MASK) || r->cfa_off != (int32_t)r->cfa_off
        || rbp_off != (int32_t)rbp_off || ra != (int8_t)ra)
        return 0;
    e->f.key = pc | (uint64_t)(uint8_t)ra << 48
             | (uint64_t)(r->cfa_kind | r->rbp_kind << 2) << 56
             | (r->ra_in_register ? KEY_RA_IN_REGISTER : 0) | (r->no_cfi ? KEY_NO_CFI : 0);
    e->f.offs = (uint64_t)(uint32_t)r->cfa_off | (uint64_t)(uint32_t)rbp_off << 32;
    return 1;
}

/* Returns the packed rule for return address pc from the thread's cache, or computed. */
static inline union cache_entry lookup_far(uintptr_t pc, union cache_entry *table, unsigned bits)
{
    union cache_entry *slot = &table[cache_index(pc, bits)];
    union cache_entry e;
    e.v = load16(slot);
    if (__builtin_expect((e.f.key & KEY_PC_MASK) == pc, 1))
        return e;
    /* Two ways: the slot's partner (the other half of its 32-byte pair) holds the entry the
     * slot had before. Direct-mapped, two hot return addresses of one slot evicted each
     * other on every walk, and a rule can cost tens of microseconds to compute (a long CFA
     * program): 6,486 computes were 20 % of perl's teardown. */
    union cache_entry *partner = &table[cache_index(pc, bits) ^ 1];
    union cache_entry other;
    other.v = load16(partner);
    if ((other.f.key & KEY_PC_MASK) == pc)
        return other;
    struct frame_rule rule;
    compute_rule(pc, &rule);
    if (pack_rule(pc, &rule, &e)) {
        /* Each store is whole: a handler on this thread sees an old or a new entry. */
        union cache_entry previous;
        previous.v = load16(slot);
        store16(partner, previous.v);
        store16(slot, e.v);
        return e;
    }
    /* Offsets beyond 32 bits or a pc above 2^48 never come out of a compiler; stop there. */
    e.f.key = (uint64_t)CFA_STOP << 56 | (rule.no_cfi ? KEY_NO_CFI : 0);
    e.f.offs = 0;
    return e;
}

/* The same, through the main thread's near cache first (the other threads have none). */
static inline union cache_entry lookup_rule(uintptr_t pc, union cache_entry *near, union cache_entry *table, unsigned bits)
{
    if (!near)
        return lookup_far(pc, table, bits);
    union cache_entry *slot = &near[cache_index(pc, NEAR_CACHE_BITS)];
    union cache_entry e;
    e.v = load16(slot);
    if (__builtin_expect((e.f.key & KEY_PC_MASK) == pc, 1))
        return e;
    e = lookup_far(pc, table, bits);
    if ((e.f.key & KEY_PC_MASK) == pc)
        store16(slot, e.v);
    return e;
}

// ---- stack bounds ----

extern void *__libc_stack_end;  // exported by ld.so: the initial rsp of the main thread

/* Returns the exclusive upper end of memory known to be mapped from sp upwards. */
static uintptr_t stack_top(uintptr_t sp)
{
    uintptr_t main_top = (uintptr_t)__libc_stack_end;
    if (sp < main_top && main_top - sp < MAIN_STACK_WINDOW)
        return main_top;
    /* glibc's thread pointer, at the top of the thread's stack block (arch.h). */
    uintptr_t self = memtrack_thread_pointer();
    if (sp < self && self - sp < THREAD_STACK_WINDOW)
        return self;
    /* Not on a known stack: a signal handler on sigaltstack, or a coroutine. The raw
     * syscall is async-signal-safe and only paid in this rare case. */
    stack_t ss;
    if (memtrack_sys_sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
        uintptr_t lo = (uintptr_t)ss.ss_sp, hi = lo + ss.ss_size;
        if (sp >= lo && sp < hi)
            return hi;
    }
    return (sp | (PAGE_SIZE_MIN - 1)) + 1;  // only the page we are on is certain
}

// ---- signal frames ----

/* A signal handler returns into the kernel's trampoline (glibc's __restore_rt on x86_64, the
 * vDSO's __kernel_rt_sigreturn or qemu-user's page on aarch64), a rt_sigreturn system call.
 * Its CFI, where it has any, describes the signal frame in terms our rule set cannot express,
 * so the trampoline is recognised instead, and the interrupted registers are read from the
 * signal frame the kernel put at the handler's CFA (arch.h: memtrack_signal_frame). */

/* Set by compute_rule when an FDE marked as a signal frame ("S") covers a return address
 * whose code is the trampoline's (arch.h). One per process: a single word. */
static uintptr_t g_signal_return;

static void note_signal_return(uintptr_t pc, uintptr_t object_end)
{
    /* Only code of a loaded object is read: it is mapped, so the comparison cannot fault. */
    if (pc + MEMTRACK_SIGRETURN_BYTES <= object_end && memtrack_is_sigreturn((const uint8_t *)pc))
        __atomic_store_n(&g_signal_return, pc, __ATOMIC_RELAXED);
}

// ---- the walk ----

/* Steps from the trampoline at sp (the handler's CFA) to the interrupted code. The interrupted
 * pc is the instruction itself, not a return address: it is reported as pc + 1, so that a
 * reader's "return address - 1" and our own rule lookup (which also takes pc - 1) land on it.
 * lr is the interrupted link register (aarch64; 0 on x86_64). */
static int step_signal_frame(uintptr_t *pc, uintptr_t *sp, uintptr_t *bp, uintptr_t *lr, uintptr_t *lo,
                             uintptr_t *hi)
{
    struct memtrack_interrupted at;
    if (!memtrack_signal_frame(*sp, *lo, *hi, &at))
        return 0;
    if (at.pc == 0 || at.sp == 0 || (at.sp & 7))
        return 0;
    *pc = at.pc + 1;
    *bp = at.fp;
    *lr = memtrack_code_address(at.lr);
    *sp = at.sp;
    /* The handler may have run on sigaltstack: the interrupted code's stack has other bounds. */
    if (at.sp < *lo || at.sp >= *hi) {
        *lo = at.sp;
        *hi = stack_top(at.sp);
    }
    return 1;
}

/* Called by the entry stub with the state right after memtrack_unwind returns to its caller:
 * pc is that return address, sp the caller's stack pointer, bp the caller's frame pointer. */
__attribute__((visibility("hidden"), used, noinline))
int memtrack_unwind_from(uintptr_t *frames, int max_frames, uintptr_t pc, uintptr_t sp,
                         uintptr_t bp);

int memtrack_unwind_from(uintptr_t *frames, int max_frames, uintptr_t pc, uintptr_t sp,
                         uintptr_t bp)
{
    if (max_frames <= 0)
        return 0;
    unsigned generation = __atomic_load_n(&g_unwind_generation, __ATOMIC_RELAXED);
    union cache_entry *table = t_table;
    unsigned bits = t_table_bits;
    if (__builtin_expect(!table, 0)) {
        /* A handler interrupting this on the same thread may choose first; either table is
         * this thread's alone, so whichever stays is right. */
        int unclaimed = 0;
        int main_thread = __atomic_compare_exchange_n(&main_cache_taken, &unclaimed, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        bits = main_thread ? MAIN_CACHE_BITS : UNWIND_CACHE_BITS;
        table = main_thread ? main_cache : t_cache;
        t_table_bits = bits;
        t_near = main_thread ? main_near_cache : NULL;
        t_table = table;
    }
    union cache_entry *near = t_near;
    if (__builtin_expect(generation != t_cache_generation, 0)) {
        /* Slot by slot, with single stores, so a handler interrupting us sees old or empty. */
        for (unsigned i = 0; i < 1u << bits; i++)
            store16(&table[i], memtrack_zero16());
        for (unsigned i = 0; near && i < 1u << NEAR_CACHE_BITS; i++)
            store16(&near[i], memtrack_zero16());
        t_cache_generation = generation;
    }

    uintptr_t lo = sp;
    uintptr_t hi = stack_top(sp);
    uintptr_t lr = 0;   // aarch64: the interrupted code's x30, right after a signal frame
    int n = 0;
    while (n < max_frames && pc != 0) {

        union cache_entry rule = lookup_rule(pc, near, table, bits);
        const int cfa_kind = (int)(rule.f.key >> 56) & 3;
        const int rbp_kind = (int)(rule.f.key >> 58) & 3;
        const intptr_t cfa_off = (int32_t)(uint32_t)rule.f.offs;
        const intptr_t rbp_off = (int32_t)(uint32_t)(rule.f.offs >> 32);
        const intptr_t ra_off = (int8_t)(uint8_t)(rule.f.key >> 48) + (MEMTRACK_RA_PACKED_FROM_FP ? rbp_off : 0);
        /* aarch64: the return address is still in x30 (only code a signal interrupted). */
        const int leaf = MEMTRACK_RA_IN_REGISTER && (rule.f.key & KEY_RA_IN_REGISTER);
        uintptr_t cfa;
        /* Tests in order of frequency rather than a jump table: most frames of -O2 code have an
         * rsp-based CFA, frame-pointer code an rbp-based one. */
        if (__builtin_expect(cfa_kind == CFA_RSP, 1)) {
            cfa = sp + (uintptr_t)cfa_off;
        } else if (cfa_kind == CFA_RBP) {
            cfa = bp + (uintptr_t)cfa_off;
        } else if (cfa_kind == CFA_DEREF_RBP) {
            uintptr_t at = bp + (uintptr_t)cfa_off;
            if (at < lo || at > hi - 8 || (at & 7))
                return n;
            cfa = *(const uintptr_t *)at;
        } else {
            /* No rule: the signal trampoline (found by compute_rule, or on aarch64 any code
             * without CFI whose frame checks out), or the end. The state goes through copies:
             * taking the addresses of pc, sp, bp, lo and hi themselves kept them in memory for
             * the whole walk (five loads and stores a frame). */
            uintptr_t to_pc = pc, to_sp = sp, to_bp = bp, to_lr = 0, to_lo = lo, to_hi = hi;
            if ((pc == __atomic_load_n(&g_signal_return, __ATOMIC_RELAXED)
                 || (MEMTRACK_SIGFRAME_SELF_CHECKED && (rule.f.key & KEY_NO_CFI)))
                && step_signal_frame(&to_pc, &to_sp, &to_bp, &to_lr, &to_lo, &to_hi)) {
                pc = to_pc, sp = to_sp, bp = to_bp, lo = to_lo, hi = to_hi;
                if (MEMTRACK_RA_IN_REGISTER)
                    lr = to_lr;
                frames[n++] = pc;
                continue;
            }
            return n;
        }
        /* The CFA is the caller's rsp: it must move up, stay aligned and stay on the stack.
         * hi itself is allowed, the top frame's CFA can be the stack's end. An interrupted leaf
         * may have no frame at all (CFA = sp). */
        if ((leaf ? cfa < sp : cfa <= sp) || cfa > hi || (cfa & 7))
            return n;
        /* The return address right below the CFA, which is all x86_64 compilers emit, needs no
         * checks of its own: lo <= sp < cfa, both 8-aligned, and cfa <= hi put cfa - 8 in
         * [lo, hi - 8]. */
        uintptr_t ra_at = cfa + (uintptr_t)ra_off;
        if (!leaf && __builtin_expect(ra_off != -8, 0) && (ra_at < lo || ra_at > hi - 8 || (ra_at & 7)))
            return n;
        uintptr_t caller_bp = bp;
        if (rbp_kind != RBP_SAME) {
            uintptr_t at = (rbp_kind == RBP_AT_CFA ? cfa : bp) + (uintptr_t)rbp_off;
            if (at < lo || at > hi - 8 || (at & 7))
                return n;
            caller_bp = *(const uintptr_t *)at;
        }
        pc = leaf ? lr : memtrack_code_address(*(const uintptr_t *)ra_at);
        if (MEMTRACK_RA_IN_REGISTER)
            lr = 0;     // x30 is the callee's from here on
        if (pc == 0)
            break;      // a zero return address marks the end on some hand-made stacks
        frames[n++] = pc;
        sp = cfa;
        bp = caller_bp;
    }
    return n;
}

/* The entry point (arch.h): captures the caller's registers exactly, then tail-jumps so that
 * memtrack_unwind_from returns straight to our caller. The CFI describes the stub for
 * debuggers and for libgcc if an exception ever has to cross it. */
MEMTRACK_UNWIND_ENTRY("memtrack_unwind", "memtrack_unwind_from");

#else  /* ---- fallback: bounded frame-pointer walk ---- */

/* Deepest distance between our frame and a frame we are willing to read: keeps a walk over
 * frames without frame pointers from wandering far; 8 MiB is the default stack size. */
#define FP_WALK_WINDOW ((uintptr_t)8 << 20)

#include "arch.h"   /* memtrack_signal_frame_pc */
#include <sys/auxv.h>

/* The vDSO's first 2 pages: a return address there is the signal trampoline (its other
 * functions call nothing). 0 when there is none (qemu-user has its own trampoline page). */
static uintptr_t vdso_start(void)
{
    static uintptr_t start = 1;
    uintptr_t known = __atomic_load_n(&start, __ATOMIC_RELAXED);
    if (known == 1) {
        known = (uintptr_t)getauxval(AT_SYSINFO_EHDR);   /* reads the saved auxv: signal-safe */
        __atomic_store_n(&start, known, __ATOMIC_RELAXED);
    }
    return known;
}

__attribute__((noinline))
int memtrack_unwind(uintptr_t *frames, int max_frames)
{
    /* Layout shared by x86_64, AArch64, RISC-V (-fno-omit-frame-pointer) and others:
     * fp[0] = caller's frame pointer, fp[1] = return address. */
    uintptr_t *fp = (uintptr_t *)__builtin_frame_address(0);
    uintptr_t lo = (uintptr_t)fp, hi = lo + FP_WALK_WINDOW;
    int n = -1;  // our own return address is not reported
    while (n < max_frames) {
        uintptr_t f = (uintptr_t)fp;
        if (f < lo || f > hi - 2 * sizeof(uintptr_t) || (f & (sizeof(uintptr_t) - 1)))
            break;
        uintptr_t ra = fp[1];
        uintptr_t *next = (uintptr_t *)fp[0];
        if (ra == 0)
            break;
        if (n >= 0)
            frames[n] = ra;
        n++;
        if ((uintptr_t)next <= f)
            break;      // frame pointers must strictly increase
        /* A handler's record leads to the signal frame's: the interrupted pc comes first, as
         * pc + 1 (a reader steps back one byte from a return address). */
        uintptr_t vdso = vdso_start();
        int trampoline = vdso && ra >= vdso && ra - vdso < 2 * 4096;
        uintptr_t interrupted = (uintptr_t)next <= hi - 2 * sizeof(uintptr_t)
            ? memtrack_signal_frame_pc((uintptr_t)next, f + 2 * sizeof(uintptr_t), trampoline) : 0;
        if (interrupted && n < max_frames) {
            if (n >= 0)
                frames[n] = interrupted + 1;
            n++;
        }
        fp = next;
    }
    return n < 0 ? 0 : n;
}

#endif
