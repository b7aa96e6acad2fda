/* output.c: prints a lot through stdio (to a pipe: fully buffered), allocating and freeing as
 * it goes, leaks a little, and exits with status 3. Its stdout and exit status must be the same
 * with and without the tracker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    unsigned long hash = 5381;
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i % 97) + 1;
        char *p = malloc(n);
        memset(p, 'a' + i % 26, n);
        hash = hash * 33 + (unsigned char)p[n - 1] + n;
        if (i % 10 == 0)
            printf("%d %.*s %lu\n", i, (int)n, p, hash);
        free(p);
    }
    void *leak = malloc(64); /* LEAK: output */
    printf("hash %lu %s\n", hash, leak != NULL ? "ok" : "null");
    fprintf(stderr, "output: to stderr\n");
    return 3;
}
