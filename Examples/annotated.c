/* annotated.c: a program built with memtrack.h (MEMTRACK_SOURCE_LOCATIONS), stripped and -O2 in
 * the tests, so that only the header's locations can name its lines.
 *   annotated located   leaks through malloc, calloc, strdup and realloc, one each
 *   annotated pause     a leak between memtrack_pause and memtrack_resume (nested), and one after
 *   annotated ignore    a leak passed to memtrack_ignore, and one not
 *   annotated thread    a paused thread's leak (not reported) and another thread's (reported)
 *   annotated check     memtrack_check's result, printed as "check N", and whether the block
 *                       allocated just before has its record on disk right after ("recorded 1")
 *   annotated many      leaks 20,000 blocks from two lines, 10,000 each: far more than the young
 *                       table holds, so most wait in the backlog, which keeps only a stack's id
 * Every mode runs the same with or without the tracker. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define MEMTRACK_SOURCE_LOCATIONS
#include "memtrack.h"

static void *volatile kept[8];   /* volatile: -O2 must not drop the leaks */

__attribute__((noinline)) static void located(void) {
    kept[0] = malloc(11); /* LOC-MALLOC */
    kept[1] = calloc(3, 7); /* LOC-CALLOC */
    kept[2] = strdup("thirteen byte"); /* LOC-STRDUP */
    char *grown = malloc(5);
    kept[3] = realloc(grown, 17); /* LOC-REALLOC */
    char *temporary = malloc(9);
    free(temporary);
}

__attribute__((noinline)) static void paused(void) {
    memtrack_pause();
    kept[0] = malloc(21); /* PAUSED-1 */
    memtrack_pause();
    kept[1] = malloc(22); /* PAUSED-2 */
    memtrack_resume();
    kept[2] = malloc(23); /* PAUSED-3 */
    memtrack_resume();
    kept[3] = malloc(24); /* RESUMED */
    free(kept[0]);   /* a paused block's free is quiet */
    kept[0] = NULL;
}

static void *other_thread(void *unused) {
    kept[1] = malloc(82); /* OTHER-THREAD */
    return unused;
}

/* Pausing is per thread: the thread started while this one is paused is traced. */
__attribute__((noinline)) static void paused_with_thread(void) {
    pthread_t thread;
    memtrack_pause();
    if (pthread_create(&thread, NULL, other_thread, NULL) == 0) pthread_join(thread, NULL);
    kept[0] = malloc(81);
    memtrack_resume();
}

/* Whether MEM_DIR/PID/ADDRESS.mem exists now (a symlink: its target is never a path). */
static int recorded(const void *block) {
    const char *directory = getenv("MEM_DIR");
    char path[4096];
    if (!directory) return 0;
    snprintf(path, sizeof path, "%s/%d/%p.mem", directory, (int)getpid(), block);
    struct stat status;
    return lstat(path, &status) == 0;
}

__attribute__((noinline)) static void ignored(void) {
    kept[0] = malloc(31); /* IGNORED */
    kept[1] = malloc(32); /* NOT-IGNORED */
    printf("ignore %d\n", memtrack_ignore(kept[0]));
}

__attribute__((noinline)) static void many(void) {
    for (int i = 0; i < 20000; i++) {
        if (i % 2) kept[4] = malloc(40); /* LOC-MANY-A */
        else kept[5] = malloc(56); /* LOC-MANY-B */
    }
    kept[4] = kept[5] = NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "located") == 0) located();
    else if (strcmp(mode, "pause") == 0) paused();
    else if (strcmp(mode, "ignore") == 0) ignored();
    else if (strcmp(mode, "thread") == 0) paused_with_thread();
    else if (strcmp(mode, "many") == 0) many();
    else if (strcmp(mode, "check") == 0) {
        kept[0] = malloc(41);
        int lost = memtrack_check();
        printf("check %d recorded %d\n", lost, recorded(kept[0]));
    }
    else { fprintf(stderr, "usage: annotated located|pause|ignore|thread|check|many\n"); return 2; }
    printf("loaded %d\n", memtrack_loaded());
    return 0;
}
