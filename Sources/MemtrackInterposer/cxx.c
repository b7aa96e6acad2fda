/* cxx.c: the C++ operator new and operator delete family, so that every deallocation can be
 * checked against the family that allocated the block (new, new[] or malloc).
 *
 * Each wrapper forwards to the next definition in the lookup chain (libstdc++'s, or whatever
 * the program links: libc++, tcmalloc), so new_handler, std::bad_alloc and the allocator stay
 * exactly as they would be untraced. Around that call it leaves a marker in a thread-local:
 *   - operator new: the via, the size asked for and the call site's stack. The allocation entry
 *     point that the next operator new reaches (malloc, aligned_alloc...) takes the marker and
 *     records the block as new or new[], with this stack, so the record's first frame is the
 *     program's call site.
 *   - operator delete: the pointer, the family a matching allocation has, a sized delete's
 *     size, and the stack. free takes it when the pointer matches.
 * The marker is taken on failure too, so a bad_alloc thrown through the wrapper (whose frame
 * cannot clean up: this is C) leaves nothing behind. libstdc++'s own operators call each
 * other (new[] calls new, sized delete calls delete): an inner wrapper that finds a marker
 * already set only forwards.
 *
 * libmemtrack.so links no C++ runtime: the mangled names are plain C symbols here.
 *
 * Layer: api.
 */
#include "cxx.h"
#include "family.h"
#include "failure.h"
#include "shadow.h"
#include "sys.h"
#include "names.h"
#include "unwind.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <unistd.h>

MEMTRACK_THREAD_LOCAL struct memtrack_cxx_allocation *memtrack_cxx_allocation;
MEMTRACK_THREAD_LOCAL struct memtrack_cxx_deallocation *memtrack_cxx_deallocation;

// ---- The next definitions ---------------------------------------------------------------------
static _Atomic(void *) next_operator[MEMTRACK_OPERATOR_COUNT];

/* Last resort, when no loaded object defines the operator (a C++ library opened RTLD_LOCAL
 * whose C++ runtime is not libstdc++): what the default operators do, minus new_handler. A
 * failed throwing new ends the program as an uncaught std::bad_alloc would. Extra arguments
 * (nothrow tag, alignment, size) are ignored where they do not matter. */
static void *(*fallback_malloc)(size_t);
static void (*fallback_free)(void *);
static int (*fallback_posix_memalign)(void **, size_t, size_t);
static void *fallback_new(size_t size) {
    void *block = fallback_malloc(size ? size : 1);
    if (!block) { memtrack_say("memtrack: fatal: operator new: out of memory and no C++ runtime to throw\n"); abort(); }
    return block;
}
static void *fallback_new_nothrow(size_t size) { return fallback_malloc(size ? size : 1); }
static void *fallback_new_aligned_nothrow(size_t size, size_t alignment) {
    void *block = NULL;
    return fallback_posix_memalign(&block, alignment < sizeof(void *) ? sizeof(void *) : alignment, size ? size : 1) ? NULL : block;
}
static void *fallback_new_aligned(size_t size, size_t alignment) {
    void *block = fallback_new_aligned_nothrow(size, alignment);
    if (!block) return fallback_new((size_t)-1);   /* the same fatal message */
    return block;
}
static void fallback_delete(void *pointer) { fallback_free(pointer); }

/* The default operators call malloc, free and posix_memalign by name, so the first definition
 * in the global scope (ours, or the program's own) gets them, found here (not a call through
 * our own PLT slots). Under memtrack_busy: dlsym may allocate. */
static void *fallback(enum memtrack_operator index) {
    if (!fallback_posix_memalign) {
        fallback_malloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
        fallback_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
        fallback_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_DEFAULT, "posix_memalign");
    }
    switch (index) {
    case MEMTRACK_NEW: case MEMTRACK_NEW_ARRAY: return (void *)fallback_new;
    case MEMTRACK_NEW_NOTHROW: case MEMTRACK_NEW_ARRAY_NOTHROW: return (void *)fallback_new_nothrow;
    case MEMTRACK_NEW_ALIGNED: case MEMTRACK_NEW_ARRAY_ALIGNED: return (void *)fallback_new_aligned;
    case MEMTRACK_NEW_ALIGNED_NOTHROW: case MEMTRACK_NEW_ARRAY_ALIGNED_NOTHROW: return (void *)fallback_new_aligned_nothrow;
    default: return (void *)fallback_delete;
    }
}

/* Any loaded object but us that defines the name, in load order (RTLD_LOCAL ones included). */
static void *find_in_loaded_objects(const char *name) {
    void *found = NULL;
    struct link_map *map = memtrack_sys_first_object();
    Dl_info self;
    struct link_map *our_map = NULL;
    if (!dladdr1((void *)find_in_loaded_objects, &self, (void **)&our_map, RTLD_DL_LINKMAP)) our_map = NULL;
    for (; map && !found; map = map->l_next) {
        if (map == our_map || !map->l_name || !map->l_name[0]) continue;
        void *library = memtrack_sys_dlopen(map->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (!library) continue;
        void *candidate = dlsym(library, name);
        Dl_info where;
        if (candidate && !(dladdr(candidate, &where) && where.dli_fbase == self.dli_fbase)) found = candidate;
        memtrack_sys_dlclose(library);
    }
    return found;
}

/* Found on first use: libstdc++ may be loaded after us, even by dlopen. RTLD_NEXT sees the
 * global scope; a C++ runtime that only a RTLD_LOCAL library pulled in is found among the
 * loaded objects. */
static void *resolve(enum memtrack_operator index) {
    void *found = atomic_load_explicit(&next_operator[index], memory_order_acquire);
    if (MEMTRACK_LIKELY(found != NULL)) return found;
    memtrack_busy++;   /* dlsym may allocate: those blocks are ours */
    found = dlsym(RTLD_NEXT, memtrack_operator_names[index]);
    if (!found) found = find_in_loaded_objects(memtrack_operator_names[index]);
    if (!found) found = fallback(index);
    memtrack_busy--;
    atomic_store_explicit(&next_operator[index], found, memory_order_release);
    return found;
}

/* The wrappers run before the tracker is ready only in a program that news in a constructor
 * that runs before ours; then they only forward. */
static inline int tracking(void) {
    return atomic_load_explicit(&memtrack_ready, memory_order_acquire) && !memtrack_busy;
}

/* A program may replace operator new alone (its executable comes before us in the lookup
 * order) and keep the library's delete, ours: its blocks reach malloc without our marker, and
 * checking their deletes would report every one. Families are recorded and checked only when
 * the program's new and new[] are ours; otherwise the wrappers only forward. */
void *memtrack_own_new(size_t) __attribute__((alias("_Znwm"), visibility("hidden")));
void *memtrack_own_new_array(size_t) __attribute__((alias("_Znam"), visibility("hidden")));
static atomic_int families_known;   /* 0 unknown, 1 yes, 2 no */

static int families_checked(void) {
    int known = atomic_load_explicit(&families_known, memory_order_relaxed);
    if (MEMTRACK_LIKELY(known)) return known == 1;
    memtrack_busy++;
    int ours = dlsym(RTLD_DEFAULT, "_Znwm") == (void *)memtrack_own_new &&
               dlsym(RTLD_DEFAULT, "_Znam") == (void *)memtrack_own_new_array;
    memtrack_busy--;
    atomic_store(&families_known, ours ? 1 : 2);
    return ours;
}

// ---- operator new -----------------------------------------------------------------------------
/* A macro, so that the stack is captured in the exported function's own frame: its first
 * frame is then the program's call site. */
#define NEW_WRAPPER(symbol, index, via_value, family_value, parameters, types, arguments, size_expr) \
    MEMTRACK_EXPORT void *symbol parameters {                                              \
        void *(*next) types = (void *(*) types)resolve(index);                             \
        if (!tracking() || memtrack_cxx_allocation || !families_checked()) return next arguments; \
        struct memtrack_cxx_allocation request;                                            \
        request.via = via_value;                                                           \
        request.size = size_expr;                                                          \
        request.claimed = NULL;                                                            \
        request.stack.depth = (uint32_t)memtrack_unwind(request.stack.frames,              \
                                                        memtrack_config.depth);            \
        memtrack_cxx_allocation = &request;                                                \
        void *result = next arguments;                                                     \
        memtrack_cxx_allocation = NULL;                                                    \
        if (result && request.claimed != result) adopt(result, family_value);              \
        return result;                                                                     \
    }

/* The block came from an allocation the marker did not reach (a retry after the new_handler
 * freed memory): it is recorded as malloc's, but its family must still be known. */
static void adopt(void *result, int family) {
    if (memtrack_shadow_state(result) == MEMTRACK_LIVE) memtrack_family_set(result, family);
}

typedef const void *nothrow_ref;   /* const std::nothrow_t & */
typedef size_t alignment_t;        /* std::align_val_t */

NEW_WRAPPER(_Znwm, MEMTRACK_NEW, MEMTRACK_VIA_NEW, MEMTRACK_FAMILY_NEW,
            (size_t size), (size_t), (size), size)
NEW_WRAPPER(_ZnwmRKSt9nothrow_t, MEMTRACK_NEW_NOTHROW, MEMTRACK_VIA_NEW, MEMTRACK_FAMILY_NEW,
            (size_t size, nothrow_ref tag), (size_t, nothrow_ref), (size, tag), size)
NEW_WRAPPER(_ZnwmSt11align_val_t, MEMTRACK_NEW_ALIGNED, MEMTRACK_VIA_NEW_ALIGNED, MEMTRACK_FAMILY_NEW,
            (size_t size, alignment_t alignment), (size_t, alignment_t), (size, alignment), size)
NEW_WRAPPER(_ZnwmSt11align_val_tRKSt9nothrow_t, MEMTRACK_NEW_ALIGNED_NOTHROW, MEMTRACK_VIA_NEW_ALIGNED, MEMTRACK_FAMILY_NEW,
            (size_t size, alignment_t alignment, nothrow_ref tag), (size_t, alignment_t, nothrow_ref),
            (size, alignment, tag), size)
NEW_WRAPPER(_Znam, MEMTRACK_NEW_ARRAY, MEMTRACK_VIA_NEW_ARRAY, MEMTRACK_FAMILY_ARRAY,
            (size_t size), (size_t), (size), size)
NEW_WRAPPER(_ZnamRKSt9nothrow_t, MEMTRACK_NEW_ARRAY_NOTHROW, MEMTRACK_VIA_NEW_ARRAY, MEMTRACK_FAMILY_ARRAY,
            (size_t size, nothrow_ref tag), (size_t, nothrow_ref), (size, tag), size)
NEW_WRAPPER(_ZnamSt11align_val_t, MEMTRACK_NEW_ARRAY_ALIGNED, MEMTRACK_VIA_NEW_ARRAY_ALIGNED, MEMTRACK_FAMILY_ARRAY,
            (size_t size, alignment_t alignment), (size_t, alignment_t), (size, alignment), size)
NEW_WRAPPER(_ZnamSt11align_val_tRKSt9nothrow_t, MEMTRACK_NEW_ARRAY_ALIGNED_NOTHROW, MEMTRACK_VIA_NEW_ARRAY_ALIGNED,
            MEMTRACK_FAMILY_ARRAY, (size_t size, alignment_t alignment, nothrow_ref tag),
            (size_t, alignment_t, nothrow_ref), (size, alignment, tag), size)

// ---- operator delete --------------------------------------------------------------------------
/* The stack is taken here when free will need it: always with the quarantine (it keeps the
 * free's stack), and for a sized delete or a block of another family (a report follows). */
#define DELETE_WRAPPER(symbol, index, via_value, family_value, parameters, types, arguments, size_expr) \
    MEMTRACK_EXPORT void symbol parameters {                                               \
        void (*next) types = (void (*) types)resolve(index);                               \
        struct memtrack_cxx_deallocation *outer = memtrack_cxx_deallocation;               \
        if (!pointer || !tracking() || (outer && outer->pointer == pointer) || !families_checked()) { \
            next arguments;                                                                \
            return;                                                                        \
        }                                                                                  \
        struct memtrack_cxx_deallocation request;                                          \
        request.pointer = pointer;                                                         \
        request.via = via_value;                                                           \
        request.family = family_value;                                                     \
        request.size = size_expr;                                                          \
        request.stack.depth = 0;                                                           \
        if (memtrack_config.quarantine_bytes || request.size ||                            \
            memtrack_family_peek(pointer) != family_value)                                 \
            request.stack.depth = (uint32_t)memtrack_unwind(request.stack.frames,          \
                                                            memtrack_config.depth);        \
        memtrack_cxx_deallocation = &request;                                              \
        next arguments;                                                                    \
        memtrack_cxx_deallocation = outer;                                                 \
    }

DELETE_WRAPPER(_ZdlPv, MEMTRACK_DELETE, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer), (void *), (pointer), 0)
DELETE_WRAPPER(_ZdlPvRKSt9nothrow_t, MEMTRACK_DELETE_NOTHROW, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer, nothrow_ref tag), (void *, nothrow_ref), (pointer, tag), 0)
DELETE_WRAPPER(_ZdlPvm, MEMTRACK_DELETE_SIZED, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer, size_t size), (void *, size_t), (pointer, size), size)
DELETE_WRAPPER(_ZdlPvSt11align_val_t, MEMTRACK_DELETE_ALIGNED, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer, alignment_t alignment), (void *, alignment_t), (pointer, alignment), 0)
DELETE_WRAPPER(_ZdlPvSt11align_val_tRKSt9nothrow_t, MEMTRACK_DELETE_ALIGNED_NOTHROW, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer, alignment_t alignment, nothrow_ref tag), (void *, alignment_t, nothrow_ref),
               (pointer, alignment, tag), 0)
DELETE_WRAPPER(_ZdlPvmSt11align_val_t, MEMTRACK_DELETE_SIZED_ALIGNED, MEMTRACK_VIA_DELETE, MEMTRACK_FAMILY_NEW,
               (void *pointer, size_t size, alignment_t alignment), (void *, size_t, alignment_t),
               (pointer, size, alignment), size)
DELETE_WRAPPER(_ZdaPv, MEMTRACK_DELETE_ARRAY, MEMTRACK_VIA_DELETE_ARRAY, MEMTRACK_FAMILY_ARRAY,
               (void *pointer), (void *), (pointer), 0)
DELETE_WRAPPER(_ZdaPvRKSt9nothrow_t, MEMTRACK_DELETE_ARRAY_NOTHROW, MEMTRACK_VIA_DELETE_ARRAY, MEMTRACK_FAMILY_ARRAY,
               (void *pointer, nothrow_ref tag), (void *, nothrow_ref), (pointer, tag), 0)
DELETE_WRAPPER(_ZdaPvm, MEMTRACK_DELETE_ARRAY_SIZED, MEMTRACK_VIA_DELETE_ARRAY, MEMTRACK_FAMILY_ARRAY,
               (void *pointer, size_t size), (void *, size_t), (pointer, size), size)
DELETE_WRAPPER(_ZdaPvSt11align_val_t, MEMTRACK_DELETE_ARRAY_ALIGNED, MEMTRACK_VIA_DELETE_ARRAY, MEMTRACK_FAMILY_ARRAY,
               (void *pointer, alignment_t alignment), (void *, alignment_t), (pointer, alignment), 0)
DELETE_WRAPPER(_ZdaPvSt11align_val_tRKSt9nothrow_t, MEMTRACK_DELETE_ARRAY_ALIGNED_NOTHROW, MEMTRACK_VIA_DELETE_ARRAY,
               MEMTRACK_FAMILY_ARRAY, (void *pointer, alignment_t alignment, nothrow_ref tag),
               (void *, alignment_t, nothrow_ref), (pointer, alignment, tag), 0)
DELETE_WRAPPER(_ZdaPvmSt11align_val_t, MEMTRACK_DELETE_ARRAY_SIZED_ALIGNED, MEMTRACK_VIA_DELETE_ARRAY, MEMTRACK_FAMILY_ARRAY,
               (void *pointer, size_t size, alignment_t alignment), (void *, size_t, alignment_t),
               (pointer, size, alignment), size)
