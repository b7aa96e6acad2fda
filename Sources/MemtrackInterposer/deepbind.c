/* deepbind.c: libraries opened with RTLD_DEEPBIND, and dlmopen namespaces.
 *
 * A library opened with RTLD_DEEPBIND looks symbols up in its own dependencies first, so its
 * malloc and free bind to libc's and bypass the tracker: a block it strdup()s (libc's strdup
 * reaches us) and frees itself reads as a leak, and its own malloc leaks go unseen. After such
 * a dlopen, every object it loaded gets its GOT slots for the allocation functions pointed at
 * ours, as heaptrack's injection does. Only a slot that holds, or would resolve to, the very
 * function ours forwards to is changed: the library still reaches the same allocator, through
 * the tracker. A library that brings its own malloc keeps it, untracked.
 *
 * glibc's dlopen looks a bare name up along its caller's RUNPATH, and the caller of the next
 * dlopen is us. So dlopen is a tail call (the program's own frame stays the caller) except
 * for RTLD_DEEPBIND with a name whose search cannot depend on the caller; otherwise the
 * library is left untracked, with one warning.
 *
 * A dlmopen namespace gets its own libc and its own heap, which is not ours to redirect: one
 * warning says it is not tracked.
 *
 * Layer: process.
 */
#include "base.h"
#include "failure.h"
#include "sys.h"
#include "arch.h"
#include "names.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A guaranteed tail call where the compiler has the statement attribute (clang, gcc >= 15);
 * elsewhere -O2's ordinary sibling call does the same. */
#if defined(__has_attribute)
#if __has_attribute(musttail)
#define MEMTRACK_MUSTTAIL __attribute__((musttail))
#endif
#endif
#ifndef MEMTRACK_MUSTTAIL
#define MEMTRACK_MUSTTAIL
#endif

static void *(*_Atomic next_dlopen)(const char *, int);
static void *(*_Atomic next_dlmopen)(Lmid_t, const char *, int);

static void *next_function(const char *name) {
    memtrack_busy++;
    void *found = dlsym(RTLD_NEXT, name);
    memtrack_busy--;
    return found;
}

static void warn_once(atomic_int *warned, const char *line) {
    if (!atomic_exchange(warned, 1)) memtrack_say(line);
}

// ---- The functions redirected ---------------------------------------------------------------
/* Each allocation function the tracker exports (names.h); its address is ours (dlsym on our
 * own handle) and the one ours forwards to is RTLD_NEXT's. */
#define REDIRECTED_COUNT (MEMTRACK_ALLOCATION_FUNCTIONS + MEMTRACK_OPERATOR_COUNT)
static const char *redirected_name(size_t k) {
    return k < MEMTRACK_ALLOCATION_FUNCTIONS ? memtrack_allocation_names[k]
                                             : memtrack_operator_names[k - MEMTRACK_ALLOCATION_FUNCTIONS];
}

struct redirection { void *ours, *next, *in_scope; };

// ---- Patching one object ----------------------------------------------------------------------
struct relro { uintptr_t base, start, end; };

static int find_relro(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct relro *relro = data;
    if (info->dlpi_addr != relro->base) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_GNU_RELRO) continue;
        relro->start = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        relro->end = relro->start + info->dlpi_phdr[i].p_memsz;
    }
    return 1;
}

/* Dynamic-section pointers are absolute once ld.so has relocated them (x86_64), but not on
 * every architecture: an offset below the load address is taken as relative. */
static uintptr_t dynamic_pointer(const struct link_map *map, ElfW(Addr) value) {
    return value < map->l_addr ? map->l_addr + value : value;
}

static void write_slot(uintptr_t slot, void *value, const struct relro *relro) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t page_start = slot & ~(uintptr_t)(page - 1);
    int protected = slot >= relro->start && slot < relro->end;
    if (protected && mprotect((void *)page_start, (size_t)page, PROT_READ | PROT_WRITE) != 0) return;
    __atomic_store_n((void **)slot, value, __ATOMIC_RELEASE);   /* a racing call sees old or new */
    if (protected) mprotect((void *)page_start, (size_t)page, PROT_READ);
}

static void patch_relocations(const struct link_map *map, const ElfW(Rela) *relocations, size_t bytes,
                              const ElfW(Sym) *symbols, const char *strings,
                              const struct redirection *redirections, const struct relro *relro) {
    for (size_t i = 0; i < bytes / sizeof(ElfW(Rela)); i++) {
        unsigned long type = ELF64_R_TYPE(relocations[i].r_info);
        if (type != MEMTRACK_R_JUMP_SLOT && type != MEMTRACK_R_GLOB_DAT) continue;
        const char *name = strings + symbols[ELF64_R_SYM(relocations[i].r_info)].st_name;
        for (size_t k = 0; k < REDIRECTED_COUNT; k++) {
            if (strcmp(name, redirected_name(k)) != 0) continue;
            const struct redirection *r = &redirections[k];
            uintptr_t slot = map->l_addr + relocations[i].r_offset;
            void *current = *(void *const *)slot;
            /* Bound to what ours forwards to, or not bound yet (lazy) and would be. */
            if (r->ours && r->next && current != r->ours &&
                (current == r->next || (type == MEMTRACK_R_JUMP_SLOT && r->in_scope == r->next)))
                write_slot(slot, r->ours, relro);
            break;
        }
    }
}

static void patch_object(const struct link_map *map, const struct redirection *redirections) {
    const ElfW(Sym) *symbols = NULL;
    const char *strings = NULL;
    const ElfW(Rela) *rela = NULL, *plt = NULL;
    size_t rela_bytes = 0, plt_bytes = 0;
    for (const ElfW(Dyn) *d = map->l_ld; d && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: symbols = (const void *)dynamic_pointer(map, d->d_un.d_ptr); break;
        case DT_STRTAB: strings = (const void *)dynamic_pointer(map, d->d_un.d_ptr); break;
        case DT_RELA: rela = (const void *)dynamic_pointer(map, d->d_un.d_ptr); break;
        case DT_RELASZ: rela_bytes = d->d_un.d_val; break;
        case DT_JMPREL: plt = (const void *)dynamic_pointer(map, d->d_un.d_ptr); break;
        case DT_PLTRELSZ: plt_bytes = d->d_un.d_val; break;
        default: break;
        }
    }
    if (!symbols || !strings) return;
    struct relro relro = { map->l_addr, 0, 0 };
    dl_iterate_phdr(find_relro, &relro);
    if (rela) patch_relocations(map, rela, rela_bytes, symbols, strings, redirections, &relro);
    if (plt) patch_relocations(map, plt, plt_bytes, symbols, strings, redirections, &relro);
}

/* The last object of the base namespace's list: what a dlopen loads is appended after it. */
static struct link_map *last_object(void) {
    struct link_map *map = memtrack_sys_first_object();
    while (map && map->l_next) map = map->l_next;
    return map;
}

/* Every object after `before` in the list: what this dlopen loaded (all of it deep-bound to the
 * opened library's scope, which `handle` looks symbols up in). A library that was already
 * loaded keeps its bindings. */
static void redirect_deep_bound(void *handle, struct link_map *before) {
    static atomic_int ours_unknown;
    struct link_map *map = before ? before->l_next : NULL;
    if (!map) return;
    /* Our own definitions: looked up in our own scope, whatever the program defines. */
    Dl_info self;
    struct link_map *our_map = NULL;
    void *ourselves = NULL;
    if (dladdr1((void *)redirect_deep_bound, &self, (void **)&our_map, RTLD_DL_LINKMAP) && self.dli_fname)
        ourselves = memtrack_sys_dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!ourselves || !our_map) {
        warn_once(&ours_unknown, "memtrack: warning: cannot find libmemtrack.so's own symbols; "
                                 "RTLD_DEEPBIND libraries are not tracked\n");
        return;
    }
    struct redirection redirections[REDIRECTED_COUNT];
    memtrack_busy++;   /* dlsym may allocate */
    for (size_t k = 0; k < REDIRECTED_COUNT; k++) {
        redirections[k].ours = dlsym(ourselves, redirected_name(k));
        redirections[k].next = dlsym(RTLD_NEXT, redirected_name(k));
        redirections[k].in_scope = dlsym(handle, redirected_name(k));
    }
    memtrack_busy--;
    memtrack_sys_dlclose(ourselves);
    for (; map; map = map->l_next)
        if (map != our_map) patch_object(map, redirections);
}

// ---- Whether the caller matters ---------------------------------------------------------------
static int has_search_path(const struct link_map *map) {
    for (const ElfW(Dyn) *d = map ? map->l_ld : NULL; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_RUNPATH || d->d_tag == DT_RPATH) return 1;
    return 0;
}

/* glibc's search for a name without a slash starts with the caller's RUNPATH (or the RPATHs
 * of the caller and the executable), and "$ORIGIN" means the caller's directory: only when
 * neither applies, and the caller is in the base namespace, may we call dlopen for it. */
static int caller_independent(const char *file, const void *caller) {
    if (!file) return 1;
    if (strchr(file, '$')) return 0;
    Dl_info info;
    struct link_map *map = NULL;
    if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map) return 0;
    Lmid_t namespace_id = LM_ID_BASE;
    if (dlinfo(map, RTLD_DI_LMID, &namespace_id) != 0 || namespace_id != LM_ID_BASE) return 0;
    if (strchr(file, '/')) return 1;
    struct link_map *main_map = memtrack_sys_first_object();
    return !has_search_path(map) && !has_search_path(main_map);
}

// ---- The entry points -------------------------------------------------------------------------
/* Whether this RTLD_DEEPBIND dlopen can be made from here; warns once when not. */
static int deepbind_trackable(const char *file, const void *caller) {
    static atomic_int warned;
    memtrack_busy++;
    int independent = caller_independent(file, caller);
    memtrack_busy--;
    if (!independent)
        warn_once(&warned, "memtrack: warning: a library opened with RTLD_DEEPBIND through its caller's "
                           "RUNPATH, RPATH or $ORIGIN is not tracked\n");
    return independent;
}

static __attribute__((noinline)) void *open_deep_bound(void *(*next)(const char *, int), const char *file, int mode) {
    memtrack_busy++;
    struct link_map *before = last_object();
    memtrack_busy--;
    void *handle = next(file, mode);
    if (handle) redirect_deep_bound(handle, before);
    return handle;
}

MEMTRACK_EXPORT void *dlopen(const char *file, int mode) {
    void *(*next)(const char *, int) = atomic_load_explicit(&next_dlopen, memory_order_acquire);
    if (!next) {
        next = (void *(*)(const char *, int))next_function("dlopen");
        atomic_store_explicit(&next_dlopen, next, memory_order_release);
    }
    /* A tail call: glibc sees the program's frame as the caller, exactly as untraced. */
    if (MEMTRACK_LIKELY(!(mode & RTLD_DEEPBIND)) || !deepbind_trackable(file, __builtin_return_address(0)))
        MEMTRACK_MUSTTAIL return next(file, mode);
    return open_deep_bound(next, file, mode);
}

MEMTRACK_EXPORT void *dlmopen(Lmid_t namespace_id, const char *file, int mode) {
    static atomic_int warned;
    void *(*next)(Lmid_t, const char *, int) = atomic_load_explicit(&next_dlmopen, memory_order_acquire);
    if (!next) {
        next = (void *(*)(Lmid_t, const char *, int))next_function("dlmopen");
        atomic_store_explicit(&next_dlmopen, next, memory_order_release);
    }
    if (namespace_id != LM_ID_BASE)
        warn_once(&warned, "memtrack: warning: dlmopen: a new link-map namespace has its own allocator, "
                           "which is not tracked\n");
    MEMTRACK_MUSTTAIL return next(namespace_id, file, mode);
}
