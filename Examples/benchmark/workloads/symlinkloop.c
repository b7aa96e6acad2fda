/* symlinkloop: the file operations memtrack does for live-1m, done directly, as a floor.
 *
 * usage: symlinkloop DIR [RECORDS] [THREADS]   (default 1,000,000 records, 2 threads)
 *
 * Creates RECORDS symlinks "0x<address>.mem" in DIR, split over THREADS threads, each with a
 * record-sized target (format 2, about 35 bytes), and leaves them: what memtrack must do for a
 * program whose blocks all stay live. Two threads by default, as memtrack's exit uses two
 * (the writer and the exiting thread); one directory's inode lock serialises most of each
 * create, so a third thread would not help on two cores. DIR must exist.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int directory;
static long records, threads;

static void *create(void *argument) {
    long thread = (long)argument;
    char name[64], target[96];
    for (long i = thread; i < records; i += threads) {
        unsigned long address = 0x55d0c0a2b2a0ul + (unsigned long)i * 48;
        snprintf(name, sizeof name, "0x%lx.mem", address);
        snprintf(target, sizeof target, "2 s=%ld q=%ld t=4242 m=%ld v=m k=%ld", 16 + i % 64, i + 1, i / 1000, 1 + i % 300);
        if (symlinkat(target, directory, name) != 0) { perror("symlinkat"); exit(1); }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: symlinkloop DIR [RECORDS] [THREADS]\n"); return 2; }
    records = argc > 2 ? atol(argv[2]) : 1000000;
    threads = argc > 3 ? atol(argv[3]) : 2;
    if (threads < 1 || threads > 64) { fprintf(stderr, "symlinkloop: THREADS must be 1..64\n"); return 2; }
    directory = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) { perror(argv[1]); return 1; }
    pthread_t workers[64];
    for (long t = 0; t < threads; t++)
        if (pthread_create(&workers[t], NULL, create, (void *)t) != 0) { perror("pthread_create"); return 1; }
    for (long t = 0; t < threads; t++) pthread_join(workers[t], NULL);
    close(directory);
    return 0;
}
