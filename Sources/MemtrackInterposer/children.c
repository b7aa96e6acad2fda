/* children.c: which processes are traced (MEM_TRACE_CHILDREN, MEM_TRACE_CHILDREN_SKIP,
 * MEM_TRACE_PARENT), valgrind's --trace-children and --trace-children-skip.
 *
 * The decision is made in the new process, before main, and not at the parent's exec: a child
 * can start through execve, posix_spawn, system() or a raw clone, and glibc's own callers reach
 * the kernel without passing through any wrapper of ours. A process that is not to be traced
 * restarts itself once with libmemtrack.so taken out of LD_PRELOAD, so it runs exactly as it
 * would untraced, and so does everything it starts (valgrind's meaning: a skipped child's whole
 * subtree is skipped). Nothing has run yet but the loader and the constructors of libraries
 * loaded before us, and the restart keeps the pid, argv, the environment, descriptors and the
 * signal mask.
 *
 * "A child" is a process whose parent is not MEM_TRACE_PARENT: `memdir run` sets it to its own
 * pid, so the program it starts is traced, and so is every image that program execs in place
 * (a version manager's shim that execs the real interpreter keeps its pid and parent).
 *
 * Layer: process.
 */
#include "children.h"
#include "failure.h"
#include "format.h"
#include "sys.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* valgrind's patterns: `*` any run of characters, `?` one character, nothing else special. */
static int glob_matches(const char *pattern, size_t pattern_length, const char *text) {
    size_t p = 0;
    const char *star_pattern = NULL, *star_text = NULL;
    size_t star_p = 0;
    while (*text) {
        if (p < pattern_length && (pattern[p] == '?' || pattern[p] == *text)) {
            p++;
            text++;
        } else if (p < pattern_length && pattern[p] == '*') {
            star_pattern = pattern;
            star_p = ++p;
            star_text = text;
        } else if (star_pattern) {
            p = star_p;
            text = ++star_text;
        } else {
            return 0;
        }
    }
    while (p < pattern_length && pattern[p] == '*') p++;
    return p == pattern_length;
}

/* Whether `executable` matches one of the comma-separated patterns. A pattern without a slash
 * is also tried against the last path component, so `python3*` skips /usr/bin/python3.11. */
static int skip_list_matches(const char *patterns, const char *executable) {
    const char *slash = strrchr(executable, '/');
    const char *base = slash ? slash + 1 : executable;
    while (*patterns) {
        const char *comma = strchr(patterns, ',');
        size_t length = comma ? (size_t)(comma - patterns) : strlen(patterns);
        if (length) {
            int has_slash = memchr(patterns, '/', length) != NULL;
            if (glob_matches(patterns, length, executable) || (!has_slash && glob_matches(patterns, length, base)))
                return 1;
        }
        if (!comma) break;
        patterns = comma + 1;
    }
    return 0;
}

static int parse_pid(const char *text, pid_t *pid) {
    if (!text || !*text) return 0;
    long value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9' || value > 4194304) return 0;
        value = value * 10 + (*c - '0');
    }
    *pid = (pid_t)value;
    return value > 0;
}

static int is_untraced_child(void) {
    pid_t parent;
    int has_parent = parse_pid(getenv("MEM_TRACE_PARENT"), &parent);
    /* Without MEM_TRACE_PARENT no process is known to be the program: only skip patterns apply. */
    if (has_parent && memtrack_sys_getppid() == parent) return 0;
    const char *children = getenv("MEM_TRACE_CHILDREN");
    if (has_parent && children && !strcmp(children, "no")) return 1;
    const char *skip = getenv("MEM_TRACE_CHILDREN_SKIP");
    if (!skip || !*skip) return 0;
    const char *executable = (const char *)getauxval(AT_EXECFN);   /* the name exec was given */
    return executable && skip_list_matches(skip, executable);
}

/* A copy of envp whose LD_PRELOAD lacks `library` (matched by its last path component, however
 * the entry spells the directory); the copy lives in `memory`. */
static char **environment_without(char **envp, const char *library, char *memory, size_t bytes) {
    const char *slash = strrchr(library, '/');
    const char *ours = slash ? slash + 1 : library;
    size_t ours_length = strlen(ours), count = 0;
    while (envp[count]) count++;
    char **copy = (char **)memory;
    char *text = memory + (count + 1) * sizeof(char *);
    char *end = memory + bytes;
    for (size_t i = 0; i <= count; i++) {
        copy[i] = envp[i];
        if (!envp[i] || strncmp(envp[i], "LD_PRELOAD=", 11)) continue;
        const char *value = envp[i] + 11;
        size_t needed = strlen(envp[i]) + 1;
        if (text + needed > end) return NULL;
        char *out = text;
        memcpy(out, "LD_PRELOAD=", 11);
        out += 11;
        int first = 1;
        while (*value) {
            size_t length = strcspn(value, ": ");
            const char *entry_slash = NULL;
            for (const char *c = value; c < value + length; c++) if (*c == '/') entry_slash = c;
            const char *entry_base = entry_slash ? entry_slash + 1 : value;
            size_t base_length = (size_t)(value + length - entry_base);
            if (length && !(base_length == ours_length && !memcmp(entry_base, ours, ours_length))) {
                if (!first) *out++ = ':';
                memcpy(out, value, length);
                out += length;
                first = 0;
            }
            value += length;
            if (*value) value++;
        }
        *out++ = 0;
        copy[i] = text;
        text = out;
    }
    return copy;
}

void memtrack_restart_if_untraced(char **argv, char **envp) {
    if (!argv || !envp || !is_untraced_child()) return;
    Dl_info self;
    if (!dladdr((void *)memtrack_restart_if_untraced, &self) || !self.dli_fname) return;
    size_t count = 0, text_bytes = 0;
    while (envp[count]) {
        if (!strncmp(envp[count], "LD_PRELOAD=", 11)) text_bytes += strlen(envp[count]) + 1;
        count++;
    }
    size_t bytes = (count + 1) * sizeof(char *) + text_bytes + 16;
    char *memory = (char *)memtrack_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return;
    char **environment = environment_without(envp, self.dli_fname, memory, bytes);
    if (environment) {
        char executable[4096];
        ssize_t length = readlink("/proc/self/exe", executable, sizeof executable - 1);
        if (length > 0) {
            executable[length] = 0;
            memtrack_sys_execve(executable, argv, environment);
        }
        memtrack_sys_execve("/proc/self/exe", argv, environment);
    }
    /* The restart failed (no /proc, a seccomp filter): trace after all, and say so once. */
    memtrack_sys_munmap(memory, bytes);
    memtrack_say("memtrack: warning: could not restart an untraced child without the tracker; tracing it\n");
}
