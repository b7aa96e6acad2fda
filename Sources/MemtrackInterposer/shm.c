/* shm.c: shared memory the program makes and may never give back.
 *
 * Three kinds of record, in the same run directory and with the same discipline as blocks
 * (one file per live thing, one line, `memtrack/1 KIND` header, mode 0600, O_NOFOLLOW):
 *   0xADDR.map        a mapping: a shared anonymous or /dev/zero mmap (MEM_MAPPINGS=all adds
 *                     private anonymous ones), or a SysV segment attached with shmat. Removed
 *                     when the range is unmapped (munmap, shmdt, mremap moves it).
 *   shm-ID.shm        a SysV segment this process created (shmget); removed by IPC_RMID.
 *   posix-NAME.shm    a POSIX segment this process created (shm_open); removed by shm_unlink.
 * A mapping left at exit is unmapped by the kernel but was never given back by the program; a
 * segment left at exit outlives the process, which no other tool reports.
 *
 * Records are replaced atomically (written under a '.'-prefixed name, then renamed), because a
 * partial munmap rewrites a live record. Mappings are rare, so they are written synchronously
 * under one lock, and a fixed table keeps their ranges for partial unmaps.
 *
 * The allocator's own mappings stay out: a malloc or free in progress on this thread sets
 * memtrack_busy (entry.c), and so does the tracker's own work. glibc's malloc and the loader
 * call the kernel directly and never reach these wrappers at all. Removals are seen even then:
 * an unmap or a removal only ever makes a record stale, whoever makes it.
 *
 * Layer: process.
 */
#include "base.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "lock.h"
#include "sys.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

// ---- The next definitions ------------------------------------------------------------------
static struct {
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    void *(*mmap64)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*shmget)(key_t, size_t, int);
    void *(*shmat)(int, const void *, int);
    int (*shmdt)(const void *);
    int (*shmctl)(int, int, struct shmid_ds *);
    int (*shm_open)(const char *, int, mode_t);
    int (*shm_unlink)(const char *);
} next;
static atomic_int next_ready;
static int track_private;   /* MEM_MAPPINGS=all */

static void resolve_next(void) {
    if (atomic_load_explicit(&next_ready, memory_order_acquire)) return;
    memtrack_busy++;   /* dlsym may allocate: that is ours */
    next.mmap = dlsym(RTLD_NEXT, "mmap");
    next.mmap64 = dlsym(RTLD_NEXT, "mmap64");
    next.munmap = dlsym(RTLD_NEXT, "munmap");
    next.mremap = dlsym(RTLD_NEXT, "mremap");
    next.shmget = dlsym(RTLD_NEXT, "shmget");
    next.shmat = dlsym(RTLD_NEXT, "shmat");
    next.shmdt = dlsym(RTLD_NEXT, "shmdt");
    next.shmctl = dlsym(RTLD_NEXT, "shmctl");
    next.shm_open = dlsym(RTLD_NEXT, "shm_open");
    next.shm_unlink = dlsym(RTLD_NEXT, "shm_unlink");
    const char *mappings = getenv("MEM_MAPPINGS");
    track_private = mappings && strcmp(mappings, "all") == 0;
    memtrack_busy--;
    atomic_store_explicit(&next_ready, 1, memory_order_release);
}

/* Whether records can be written at all. Removals only need this: whoever unmaps or removes a
 * tracked thing, even code running inside the tracker's or the allocator's call, makes its
 * record stale. */
static int can_record(void) {
    return atomic_load_explicit(&memtrack_ready, memory_order_acquire) && atomic_load(&memtrack_run_directory) >= 0;
}

/* Whether this call is the program's own, so that what it creates is recorded. */
static int is_programs_call(void) { return !memtrack_busy && can_record(); }

// ---- Writing and removing records ------------------------------------------------------------
/* Replaces `name` with one line of text, atomically, through the file thread (files.c). */
static void write_record(const char *name, const char *text, size_t length) {
    int error = memtrack_write_record_file(name, text, length);
    if (error) memtrack_note_failure("writing a shared-memory record", error, &memtrack_unrecorded_blocks);
}

static void remove_record(const char *name) {
    int error = memtrack_remove_record_file(name);
    if (error && error != ENOENT)
        memtrack_note_failure("removing a shared-memory record", error, &memtrack_unremoved_records);
}

static char *put_common(char *out, const char *end, uint64_t sequence, uint32_t milliseconds,
                        int32_t thread, const char *via) {
    return memtrack_put_event_fields(out, end, sequence, thread, milliseconds, via);
}

// ---- The mapping table -----------------------------------------------------------------------
enum mapping_kind { KIND_ANONYMOUS = 1, KIND_DEV_ZERO, KIND_SYSV };
static const char *const kind_names[] = { "", "anonymous", "dev-zero", "sysv" };

struct mapping {
    uintptr_t start;   /* 0: free slot */
    size_t length;     /* page-rounded */
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint8_t kind, shared;
    const char *via;   /* static text */
    int segment_id;    /* KIND_SYSV only */
    struct memtrack_stack stack;
};

/* 1,024 live mappings: far more than programs make on purpose; beyond that they are counted
 * as unrecorded. The table is touched only by mmap-family calls, which are rare. */
#define MAX_MAPPINGS 1024
static struct mapping mappings[MAX_MAPPINGS];
static memtrack_lock mappings_lock;
static atomic_int live_mappings;   /* 0: unmaps need not look (an allocator's own munmap) */
static pid_t mappings_owner;       /* the process the table belongs to: a forked child starts empty */

/* Returns 0 when this thread already holds the lock: a signal handler interrupted a table
 * update, and the handler's call is then not tracked. */
static int lock_mappings(void) {
    if (mappings_owner != memtrack_pid) {
        /* First use in a forked child: the parent's mappings are the parent's record, and a
         * lock another thread held at fork would never be released here. */
        atomic_store(&mappings_lock, 0);
        memset(mappings, 0, sizeof mappings);
        atomic_store(&live_mappings, 0);
        mappings_owner = memtrack_pid;
    }
    return memtrack_lock_try_for_signal(&mappings_lock, -1);
}

static char *put_mapping_name(char *out, const char *end, uintptr_t start) {
    out = memtrack_put_hex(out, end, start);
    return memtrack_put_text(out, end, ".map");
}

static void write_mapping(const struct mapping *m) {
    char name[40], line[256 + MEMTRACK_MAX_DEPTH * 20];
    *put_mapping_name(name, name + sizeof name - 1, m->start) = 0;
    char *out = line, *end = line + sizeof line - 1;
    out = memtrack_put_text(out, end, "memtrack/1 mapping address=");
    out = memtrack_put_hex(out, end, m->start);
    out = memtrack_put_text(out, end, " size=");
    out = memtrack_put_decimal(out, end, m->length);
    out = put_common(out, end, m->sequence, m->milliseconds, m->thread, m->via);
    out = memtrack_put_text(out, end, " kind=");
    out = memtrack_put_text(out, end, kind_names[m->kind]);
    out = memtrack_put_text(out, end, m->shared ? " shared=1" : " shared=0");
    if (m->kind == KIND_SYSV) {
        out = memtrack_put_text(out, end, " id=");
        out = memtrack_put_decimal(out, end, (uint64_t)m->segment_id);
    }
    out = memtrack_put_text(out, end, " stack=");
    out = memtrack_put_stack(out, end, &m->stack);
    *out++ = '\n';
    write_record(name, line, (size_t)(out - line));
}

static void remove_mapping_file(uintptr_t start) {
    char name[40];
    *put_mapping_name(name, name + sizeof name - 1, start) = 0;
    remove_record(name);
}

static size_t page_round(size_t length) {
    size_t page = 4096;
    return (length + page - 1) & ~(page - 1);
}

static void add_mapping(uintptr_t start, size_t length, int kind, int shared, const char *via,
                        int segment_id, const struct memtrack_stack *stack) {
    if (!lock_mappings()) return;
    struct mapping *slot = NULL;
    for (int i = 0; i < MAX_MAPPINGS && !slot; i++) if (!mappings[i].start) slot = &mappings[i];
    if (!slot) {
        memtrack_lock_release(&mappings_lock);
        memtrack_note_failure("tracking a mapping (table full)", ENOMEM, &memtrack_unrecorded_blocks);
        return;
    }
    slot->start = start;
    slot->length = page_round(length);
    slot->sequence = atomic_fetch_add(&memtrack_sequence, 1) + 1;
    slot->milliseconds = memtrack_milliseconds_now();
    slot->thread = memtrack_thread_id();
    slot->kind = (uint8_t)kind;
    slot->shared = (uint8_t)shared;
    slot->via = via;
    slot->segment_id = segment_id;
    slot->stack = *stack;
    atomic_fetch_add(&live_mappings, 1);
    write_mapping(slot);
    memtrack_lock_release(&mappings_lock);
}

/* The range [start, start+length) is no longer mapped. A tracked mapping wholly inside it is
 * forgotten; one that overlaps it keeps what is left: the part below keeps its record (with
 * the size cut), the part above gets a record of its own at its new start. Both keep the
 * creating stack, so a half-unmapped region still points at the mmap that made it. */
static void forget_range(uintptr_t start, size_t length) {
    uintptr_t stop = start + page_round(length);
    if (!atomic_load(&live_mappings) || !lock_mappings()) return;
    for (int i = 0; i < MAX_MAPPINGS; i++) {
        struct mapping *m = &mappings[i];
        if (!m->start) continue;
        uintptr_t m_stop = m->start + m->length;
        if (m_stop <= start || m->start >= stop) continue;
        struct mapping above = *m;
        int has_above = m_stop > stop;
        if (has_above) { above.start = stop; above.length = m_stop - stop; }
        if (m->start < start) {
            m->length = start - m->start;
            write_mapping(m);
        } else {
            remove_mapping_file(m->start);
            m->start = 0;
            atomic_fetch_sub(&live_mappings, 1);
        }
        if (has_above) {
            struct mapping *slot = m->start ? NULL : m;
            for (int j = 0; j < MAX_MAPPINGS && !slot; j++) if (!mappings[j].start) slot = &mappings[j];
            if (slot) { *slot = above; atomic_fetch_add(&live_mappings, 1); write_mapping(slot); }
            else memtrack_note_failure("tracking a mapping (table full)", ENOMEM, &memtrack_unrecorded_blocks);
        }
    }
    memtrack_lock_release(&mappings_lock);
}

/* mremap moved or resized a tracked mapping: its record follows it. Returns 1 if tracked. */
static int move_mapping(uintptr_t old_start, uintptr_t new_start, size_t new_length) {
    int found = 0;
    if (!atomic_load(&live_mappings) || !lock_mappings()) return 0;
    for (int i = 0; i < MAX_MAPPINGS && !found; i++) {
        struct mapping *m = &mappings[i];
        if (m->start != old_start) continue;
        found = 1;
        if (new_start != old_start) remove_mapping_file(old_start);
        m->start = new_start;
        m->length = page_round(new_length);
        write_mapping(m);
    }
    memtrack_lock_release(&mappings_lock);
    return found;
}

// ---- mmap, munmap, mremap --------------------------------------------------------------------
/* Which mappings are the program's shared memory: anonymous, or of /dev/zero (char 1:5). */
static int mapping_kind(int flags, int fd, int *shared) {
    *shared = (flags & MAP_SHARED) != 0;
    if (flags & MAP_ANONYMOUS) return *shared || track_private ? KIND_ANONYMOUS : 0;
    struct stat status;
    if (fd < 0 || memtrack_sys_fstat(fd, &status) != 0) return 0;
    if (!S_ISCHR(status.st_mode) || status.st_rdev != makedev(1, 5)) return 0;
    return *shared || track_private ? KIND_DEV_ZERO : 0;
}

/* Inlined into each entry point, so that the stack starts at the program's call. */
static inline __attribute__((always_inline)) void *
tracked_mmap(void *(*call)(void *, size_t, int, int, int, off_t), const char *via, void *address,
             size_t length, int protection, int flags, int fd, off_t offset) {
    void *result = call(address, length, protection, flags, fd, offset);
    if (result == MAP_FAILED || !can_record()) return result;
    int saved_errno = errno;
    int programs = !memtrack_busy;
    memtrack_busy++;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) forget_range((uintptr_t)result, length);
    int shared = 0;
    int kind = programs ? mapping_kind(flags, fd, &shared) : 0;
    if (kind) {
        struct memtrack_stack stack;
        stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);
        add_mapping((uintptr_t)result, length, kind, shared, via, -1, &stack);
    }
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

MEMTRACK_EXPORT void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    if (memtrack_busy && !atomic_load(&next_ready)) return memtrack_sys_mmap(address, length, protection, flags, fd, offset);
    resolve_next();
    return tracked_mmap(next.mmap, "mmap", address, length, protection, flags, fd, offset);
}

MEMTRACK_EXPORT void *mmap64(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    if (memtrack_busy && !atomic_load(&next_ready)) return memtrack_sys_mmap(address, length, protection, flags, fd, offset);
    resolve_next();
    return tracked_mmap(next.mmap64 ? next.mmap64 : next.mmap, "mmap64", address, length, protection, flags, fd, offset);
}

MEMTRACK_EXPORT int munmap(void *address, size_t length) {
    if (memtrack_busy && !atomic_load(&next_ready)) return memtrack_sys_munmap(address, length);
    resolve_next();
    int result = next.munmap(address, length);
    if (result != 0 || !can_record()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    forget_range((uintptr_t)address, length);
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

MEMTRACK_EXPORT void *mremap(void *old_address, size_t old_length, size_t new_length, int flags, ...) {
    void *new_address = NULL;
    if (flags & MREMAP_FIXED) {
        __builtin_va_list arguments;
        __builtin_va_start(arguments, flags);
        new_address = __builtin_va_arg(arguments, void *);
        __builtin_va_end(arguments);
    }
    resolve_next();
    void *result = next.mremap(old_address, old_length, new_length, flags, new_address);
    if (result == MAP_FAILED || !can_record()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    /* A tracked mapping keeps its record and creating stack, at its new place and size. A
     * fixed target replaced whatever was mapped there. MREMAP_DONTUNMAP leaves the old range
     * mapped (empty): the record follows the data, to the new range. */
    if (flags & MREMAP_FIXED) forget_range((uintptr_t)result, new_length);
    if (!move_mapping((uintptr_t)old_address, (uintptr_t)result, new_length) && old_length > new_length &&
        result == old_address)
        forget_range((uintptr_t)old_address + new_length, old_length - new_length);
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

// ---- SysV segments ---------------------------------------------------------------------------
static char *put_segment_name(char *out, const char *end, int id) {
    out = memtrack_put_text(out, end, "shm-");
    out = memtrack_put_decimal(out, end, (uint64_t)(unsigned)id);
    return memtrack_put_text(out, end, ".shm");
}

MEMTRACK_EXPORT int shmget(key_t key, size_t size, int flags) {
    resolve_next();
    int id = next.shmget(key, size, flags);
    if (id < 0 || !is_programs_call()) return id;
    int saved_errno = errno;
    memtrack_busy++;
    /* Only a segment this call created is ours to report: IPC_PRIVATE and IPC_EXCL always
     * create; otherwise the creator's pid and an attach count of 0 tell. */
    struct shmid_ds info;
    int have_info = next.shmctl && next.shmctl(id, IPC_STAT, &info) == 0;
    int created = key == IPC_PRIVATE || (flags & (IPC_CREAT | IPC_EXCL)) == (IPC_CREAT | IPC_EXCL) ||
                  ((flags & IPC_CREAT) && have_info && info.shm_cpid == memtrack_pid && info.shm_nattch == 0 &&
                   info.shm_atime == 0);
    if (created) {
        struct memtrack_stack stack;
        stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);
        char name[40], line[256 + MEMTRACK_MAX_DEPTH * 20];
        *put_segment_name(name, name + sizeof name - 1, id) = 0;
        char *out = line, *end = line + sizeof line - 1;
        out = memtrack_put_text(out, end, "memtrack/1 segment id=");
        out = memtrack_put_decimal(out, end, (uint64_t)(unsigned)id);
        out = memtrack_put_text(out, end, " key=");
        out = memtrack_put_hex(out, end, (uint32_t)key);
        out = memtrack_put_text(out, end, " size=");
        out = memtrack_put_decimal(out, end, have_info ? info.shm_segsz : size);
        out = put_common(out, end, atomic_fetch_add(&memtrack_sequence, 1) + 1, memtrack_milliseconds_now(),
                         memtrack_thread_id(), "shmget");
        out = memtrack_put_text(out, end, " stack=");
        out = memtrack_put_stack(out, end, &stack);
        *out++ = '\n';
        write_record(name, line, (size_t)(out - line));
    }
    memtrack_busy--;
    errno = saved_errno;
    return id;
}

MEMTRACK_EXPORT void *shmat(int id, const void *address, int flags) {
    resolve_next();
    void *result = next.shmat(id, address, flags);
    if (result == (void *)-1 || !is_programs_call()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    struct shmid_ds info;
    if (next.shmctl(id, IPC_STAT, &info) == 0) {
        if (flags & SHM_REMAP) forget_range((uintptr_t)result, info.shm_segsz);
        struct memtrack_stack stack;
        stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);
        add_mapping((uintptr_t)result, info.shm_segsz, KIND_SYSV, 1, "shmat", id, &stack);
    }
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

MEMTRACK_EXPORT int shmdt(const void *address) {
    resolve_next();
    /* The attachment's size is in our table; shmdt detaches the whole segment. */
    size_t length = 0;
    if (can_record() && atomic_load(&live_mappings) && lock_mappings()) {
        for (int i = 0; i < MAX_MAPPINGS; i++)
            if (mappings[i].start == (uintptr_t)address && mappings[i].kind == KIND_SYSV) length = mappings[i].length;
        memtrack_lock_release(&mappings_lock);
    }
    int result = next.shmdt(address);
    if (result != 0 || !length) return result;
    int saved_errno = errno;
    memtrack_busy++;
    forget_range((uintptr_t)address, length);
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

MEMTRACK_EXPORT int shmctl(int id, int command, struct shmid_ds *buffer) {
    resolve_next();
    int result = next.shmctl(id, command, buffer);
    if (result != 0 || command != IPC_RMID || !can_record()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    char name[40];
    *put_segment_name(name, name + sizeof name - 1, id) = 0;
    remove_record(name);
    memtrack_busy--;
    errno = saved_errno;
    return result;
}

// ---- POSIX segments --------------------------------------------------------------------------
/* posix-NAME.shm: the name without its leading '/', every byte outside [A-Za-z0-9._-] as %XX. */
static int put_posix_name(char *out, size_t capacity, const char *segment) {
    static const char hex[] = "0123456789ABCDEF";
    char *end = out + capacity - 1;
    while (*segment == '/') segment++;
    out = memtrack_put_text(out, end, "posix-");
    for (const unsigned char *c = (const unsigned char *)segment; *c; c++) {
        if (out + 8 >= end) return -1;   /* longer than a file name may be */
        int plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                    *c == '.' || *c == '_' || *c == '-';
        if (plain) *out++ = (char)*c;
        else { *out++ = '%'; *out++ = hex[*c >> 4]; *out++ = hex[*c & 15]; }
    }
    *memtrack_put_text(out, end, ".shm") = 0;
    return 0;
}

static int posix_segment_exists(const char *segment) {
    char path[300], *out = path, *end = path + sizeof path - 1;
    while (*segment == '/') segment++;
    out = memtrack_put_text(out, end, "/dev/shm/");
    *memtrack_put_text(out, end, segment) = 0;
    struct stat status;
    return memtrack_sys_fstatat(AT_FDCWD, path, &status, AT_SYMLINK_NOFOLLOW) == 0;
}

MEMTRACK_EXPORT int shm_open(const char *segment, int flags, mode_t mode) {
    resolve_next();
    int track = (flags & O_CREAT) && is_programs_call();
    int existed = track && !(flags & O_EXCL) ? posix_segment_exists(segment) : 0;
    int fd = next.shm_open(segment, flags, mode);
    if (fd < 0 || !track || existed) return fd;
    int saved_errno = errno;
    memtrack_busy++;
    char name[256];
    if (put_posix_name(name, sizeof name, segment) == 0) {
        struct memtrack_stack stack;
        stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);
        char line[640 + MEMTRACK_MAX_DEPTH * 20];
        char *out = line, *end = line + sizeof line - 1;
        out = memtrack_put_text(out, end, "memtrack/1 posix-segment");
        out = put_common(out, end, atomic_fetch_add(&memtrack_sequence, 1) + 1, memtrack_milliseconds_now(),
                         memtrack_thread_id(), "shm_open");
        out = memtrack_put_text(out, end, " stack=");
        out = memtrack_put_stack(out, end, &stack);
        out = memtrack_put_text(out, end, " name=");   /* runs to the end of the line */
        out = memtrack_put_escaped(out, end, segment);
        *out++ = '\n';
        write_record(name, line, (size_t)(out - line));
    }
    memtrack_busy--;
    errno = saved_errno;
    return fd;
}

MEMTRACK_EXPORT int shm_unlink(const char *segment) {
    resolve_next();
    int result = next.shm_unlink(segment);
    if (result != 0 || !can_record()) return result;
    int saved_errno = errno;
    memtrack_busy++;
    char name[256];
    if (put_posix_name(name, sizeof name, segment) == 0) remove_record(name);
    memtrack_busy--;
    errno = saved_errno;
    return result;
}
