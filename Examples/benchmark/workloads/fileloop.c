/* fileloop: the file operations memtrack does for longlived, done directly, as a floor.
 *
 * usage: fileloop DIR [FILES]   (default 100,000 files)
 *
 * For each of FILES names "0x<address>.mem": openat(O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|
 * O_CLOEXEC, 0600), one write of a ~120-byte record line, close. Then unlinkat each name.
 * DIR must exist; it is left empty.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fileloop DIR [FILES]\n"); return 2; }
    long files = argc > 2 ? atol(argv[2]) : 100000;
    int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) { perror(argv[1]); return 1; }
    unsigned long base = 0x55d0c0a2b2a0ul;
    char name[64], line[256];
    for (long i = 0; i < files; i++) {
        unsigned long address = base + (unsigned long)i * 48;
        snprintf(name, sizeof name, "0x%lx.mem", address);
        int len = snprintf(line, sizeof line,
            "memtrack/1 block address=0x%lx size=%ld seq=%ld thread=4242 ms=12 via=malloc "
            "stack=0x55d0c0a011e9,0x7f5c7a029d90\n", address, 16 + i % 256, i + 1);
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) { perror("openat"); return 1; }
        if (write(fd, line, (size_t)len) != len) { perror("write"); return 1; }
        close(fd);
    }
    for (long i = 0; i < files; i++) {
        snprintf(name, sizeof name, "0x%lx.mem", base + (unsigned long)i * 48);
        if (unlinkat(dirfd, name, 0) != 0) { perror("unlinkat"); return 1; }
    }
    close(dirfd);
    return 0;
}
