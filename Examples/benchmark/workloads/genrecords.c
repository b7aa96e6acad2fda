/* genrecords: writes a run directory for `memdir list`, in block record format 2 (README.md)
 * by default, or format 1 with `--v1`.
 *
 * usage: genrecords DIR BLOCKS STACKS [--v1]
 *
 * Creates DIR (must not exist) holding `process`, `modules`, `status`, `stacks` (format 2) and
 * BLOCKS block records "0x<address>.mem" (format 2: symlinks; format 1: files), whose stacks
 * cycle through STACKS distinct stacks of 4..12 frames, so a reader groups them into STACKS
 * groups. The stack frames lie inside the two modules listed:
 * this program's own executable and the C library. Everything is deterministic.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXE_BASE   0x55d0c0a00000ul
#define EXE_START  0x55d0c0a01000ul
#define EXE_END    0x55d0c0a40000ul
#define LIBC_BASE  0x7f5c7a000000ul
#define LIBC_START 0x7f5c7a028000ul
#define LIBC_END   0x7f5c7a1bd000ul

static void write_file(int dirfd, const char *name, const char *text) {
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        fprintf(stderr, "genrecords: %s: %s\n", name, strerror(errno));
        exit(1);
    }
    close(fd);
}

/* Stack number k, comma-separated: frames in the executable, the outermost one in libc. */
static void format_stack(char *out, size_t cap, long k) {
    int depth = 4 + (int)(k % 9);
    size_t used = 0;
    for (int f = 0; f < depth; f++) {
        unsigned long address = f == depth - 1
            ? LIBC_START + 0x1d90 + (unsigned long)(k % 7) * 0x40
            : EXE_START + ((unsigned long)k * 0x3a1 + (unsigned long)f * 0x97) % (EXE_END - EXE_START - 16);
        used += (size_t)snprintf(out + used, cap - used, "%s0x%lx", f ? "," : "", address);
    }
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: genrecords DIR BLOCKS STACKS [--v1]\n"); return 2; }
    long blocks = atol(argv[2]), stacks = atol(argv[3]);
    int version1 = argc == 5 && strcmp(argv[4], "--v1") == 0;
    if (mkdir(argv[1], 0700) != 0) { perror(argv[1]); return 1; }
    int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) { perror(argv[1]); return 1; }

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char text[12288];
    snprintf(text, sizeof text,
        "memtrack/1 process\npid 4242\nppid 4100\nexe %s\narg %s\narg --generated\n"
        "start-unix-ms 1764073442123\nsettle-ms 50\ndepth 12\n", exe, exe);
    write_file(dirfd, "process", text);
    snprintf(text, sizeof text,
        "memtrack/1 modules\n"
        "module seq=0 base=0x%lx start=0x%lx end=0x%lx path=%s\n"
        "module seq=0 base=0x%lx start=0x%lx end=0x%lx path=/usr/lib/x86_64-linux-gnu/libc.so.6\n",
        EXE_BASE, EXE_START, EXE_END, exe, LIBC_BASE, LIBC_START, LIBC_END);
    write_file(dirfd, "modules", text);
    write_file(dirfd, "status", "memtrack/1 status\nstate exit\ncode 0\nunrecorded-blocks 0\n"
                                "unremoved-records 0\nunrecorded-events 0\n");

    char **stack_text = malloc((size_t)stacks * sizeof *stack_text);
    for (long k = 0; k < stacks; k++) {
        stack_text[k] = malloc(256);
        format_stack(stack_text[k], 256, k);
    }
    char name[64], line[512];
    if (!version1) {
        int fd = openat(dirfd, "stacks", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        dprintf(fd, "memtrack/2 stacks\n");
        for (long k = 0; k < stacks; k++) dprintf(fd, "%ld %s\n", k + 1, stack_text[k]);
        close(fd);
        for (long i = 0; i < blocks; i++) {
            unsigned long address = 0x55d0c1000000ul + (unsigned long)i * 64;
            snprintf(name, sizeof name, "0x%lx.mem", address);
            snprintf(line, sizeof line, "2 s=%ld q=%ld t=%ld m=%ld v=%s k=%ld",
                16 + (i * 37) % 4000, i + 1, 4242 + i % 4, i / 1000,
                i % 10 == 0 ? "c" : "m", (i * 7919) % stacks + 1);
            if (symlinkat(line, dirfd, name) != 0) { perror(name); return 1; }
        }
        close(dirfd);
        return 0;
    }
    for (long i = 0; i < blocks; i++) {
        unsigned long address = 0x55d0c1000000ul + (unsigned long)i * 64;
        snprintf(name, sizeof name, "0x%lx.mem", address);
        snprintf(line, sizeof line,
            "memtrack/1 block address=0x%lx size=%ld seq=%ld thread=%ld ms=%ld via=%s stack=%s\n",
            address, 16 + (i * 37) % 4000, i + 1, 4242 + i % 4, i / 1000,
            i % 10 == 0 ? "calloc" : "malloc", stack_text[(i * 7919) % stacks]);
        write_file(dirfd, name, line);
    }
    close(dirfd);
    return 0;
}
