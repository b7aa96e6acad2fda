// deepbind.c: opens deepbind_lib.so (beside this program) with RTLD_DEEPBIND, as heaptrack's
// test does, and has it allocate two blocks. `deepbind free` has the library free them itself
// (nothing leaks); `deepbind leak` keeps them (two leaks, at deepbind_lib.c's lines). A second
// argument `lazy` opens with RTLD_LAZY instead of RTLD_NOW. `deepbind namespace` opens the library
// twice with dlmopen in new namespaces, which have their own libc and are not tracked.
// Built with -DBARE_NAME (deepbind_runpath), it opens the library by its bare name, which only
// its RUNPATH finds: glibc's search depends on the caller, so the tracker leaves it alone.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 32);
    if (length <= 0) return 2;
    path[length] = 0;
    strcpy(strrchr(path, '/') + 1, "deepbind_lib.so");
#ifdef BARE_NAME
    strcpy(path, "deepbind_lib.so");   // found through this program's RUNPATH ($ORIGIN)
#endif
    if (argc > 1 && strcmp(argv[1], "namespace") == 0) {
        for (int i = 0; i < 2; i++) {
            void *isolated = dlmopen(LM_ID_NEWLM, path, RTLD_NOW);
            if (!isolated) { fprintf(stderr, "deepbind: %s\n", dlerror()); return 2; }
            char *(*copy)(const char *) = (char *(*)(const char *))dlsym(isolated, "deepbind_copy");
            copy("isolated");   // allocated by the namespace's own libc: not tracked
        }
        puts("deepbind: namespace");
        return 0;
    }
    int binding = argc > 2 && strcmp(argv[2], "lazy") == 0 ? RTLD_LAZY : RTLD_NOW;
    void *library = dlopen(path, RTLD_DEEPBIND | binding | RTLD_GLOBAL);
    if (!library) { fprintf(stderr, "deepbind: %s\n", dlerror()); return 2; }
    char *(*copy)(const char *) = (char *(*)(const char *))dlsym(library, "deepbind_copy");
    void *(*block)(void) = (void *(*)(void))dlsym(library, "deepbind_block");
    void (*release)(void *) = (void (*)(void *))dlsym(library, "deepbind_release");
    char *text = copy("deep");
    void *memory = block();
    if (argc > 1 && strcmp(argv[1], "free") == 0) {
        release(text);
        release(memory);
    }
    dlclose(library);   // the loader frees what it allocated for the library
    printf("deepbind: %s\n", argc > 1 ? argv[1] : "leak");
    return 0;
}
