// loader_noise.c: blocks the dynamic loader allocates for the program: the thread-local storage
// vector of a thread (still running at exit) and the link map of a library (never closed).
// Each belongs to the program's own call, not to the loader's functions.
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int pipe_ends[2];

static void *wait_forever(void *unused)
{
    char byte;
    (void)unused;
    while (read(pipe_ends[0], &byte, 1) != 0) {}   // never written: runs until exit
    return NULL;
}

int main(void)
{
    if (pipe(pipe_ends) != 0) return 2;
    pthread_t thread;
    if (pthread_create(&thread, NULL, wait_forever, NULL) != 0) return 2;   // LOADER: thread

    char path[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 32);
    if (length <= 0) return 2;
    path[length] = 0;
    strcpy(strrchr(path, '/') + 1, "deepbind_lib.so");
    void *library = dlopen(path, RTLD_NOW);                                // LOADER: dlopen
    if (!library) return 2;
    puts("loader_noise: done");
    return 0;
}
