/* stress/daemon.c: closes every descriptor above 2 as a daemon does, then opens its own files
 * (a log, a data directory, a data file) and keeps allocating. Leaks 5 blocks of 5000..5004
 * bytes, frees 1000 others, writes its files, exits 0.
 * Usage: daemon OUTDIR [sleep-ms=200] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int sleep_ms = argc > 2 ? atoi(argv[2]) : 200;
    char path[4096];
    for (int fd = 3; fd < 1024; fd++) close(fd);
    snprintf(path, sizeof path, "%s/log", argv[1]);
    int log = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    snprintf(path, sizeof path, "%s/datadir", argv[1]);
    int datadir = open(path, O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof path, "%s/data", argv[1]);
    int data = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (log < 0 || datadir < 0 || data < 0) { perror("open"); return 2; }
    for (int i = 0; i < 5; i++) {
        char *leak = malloc(5000 + (size_t)i);
        leak[0] = 1;
        __asm__ volatile("" ::"r"(leak) : "memory");
    }
    for (int i = 0; i < 1000; i++) {
        char *tmp = malloc(32 + (size_t)i);
        tmp[0] = 1;
        free(tmp);
    }
    usleep((useconds_t)sleep_ms * 1000);
    const char line[] = "daemon: started\n";
    if (write(log, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) return 2;
    const char bytes[] = "data\n";
    if (write(data, bytes, sizeof bytes - 1) != (ssize_t)(sizeof bytes - 1)) return 2;
    dprintf(1, "fds %d %d %d\n", log, datadir, data);
    return 0;
}
