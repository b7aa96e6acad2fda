/* dlopen_leak.c: loads plugin.so (next to the executable, or argv[1]), calls a function that
 * leaks, dlcloses it; then does the same with plugin2.so (argv[2]). Both leaks must resolve to
 * their plugin's source line although neither plugin is loaded at exit. */
#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep[2];

static int leak_from(const char *path, const char *symbol, int slot)
{
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "dlopen_leak: %s\n", dlerror());
        return 1;
    }
    void *(*fn)(void) = (void *(*)(void))dlsym(handle, symbol);
    if (fn == NULL) {
        fprintf(stderr, "dlopen_leak: %s\n", dlerror());
        return 1;
    }
    keep[slot] = fn();
    dlclose(handle);
    return 0;
}

int main(int argc, char **argv)
{
    char dir[4096], first[4200], second[4200];
    snprintf(dir, sizeof dir, "%s", argv[0]);
    snprintf(first, sizeof first, "%s/plugin.so", dirname(dir));
    snprintf(second, sizeof second, "%s/plugin2.so", dir);
    if (argc > 1)
        snprintf(first, sizeof first, "%s", argv[1]);
    if (argc > 2)
        snprintf(second, sizeof second, "%s", argv[2]);
    if (leak_from(first, "plugin_leak", 0) || leak_from(second, "plugin2_leak", 1))
        return 1;
    puts("dlopen_leak: 2 leaks");
    return 0;
}
