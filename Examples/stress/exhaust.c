/* stress/exhaust.c: deterministic output, 40 leaks of 100..139 bytes, 2000 short-lived blocks,
 * an optional pause so a deferred record gets written, exit status 3.
 * Usage: exhaust [sleep-ms=0] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int sleep_ms = argc > 1 ? atoi(argv[1]) : 0;
    for (int i = 0; i < 40; i++) {
        char *leak = malloc(100 + (size_t)i);
        memset(leak, 'a', 100);
        __asm__ volatile("" ::"r"(leak) : "memory");
        for (int k = 0; k < 50; k++) {
            char *tmp = malloc(16 + (size_t)k * 8);
            tmp[0] = (char)k;
            free(tmp);
        }
        printf("line %d\n", i);
    }
    if (sleep_ms) usleep((useconds_t)sleep_ms * 1000);
    fprintf(stderr, "exhaust: done\n");
    return 3;
}
