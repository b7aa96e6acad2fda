/* alloc_kinds.c: one leak through each allocation entry point, each with its own size. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink[16];
/* A NULL the compiler cannot see: gcc turns a literal realloc(NULL, n) into malloc(n). */
static void *volatile nothing;

int main(void)
{
    int i = 0;
    void *p;

    sink[i++] = calloc(3, 37);                   /* LEAK: calloc 111 */

    /* realloc that grows: a neighbour keeps the block from growing in place, so it moves. */
    char *small = malloc(16);
    void *neighbour = malloc(16);
    char *moved = realloc(small, 5000);          /* LEAK: realloc-grow 5000 */
    sink[i++] = moved;
    free(neighbour);

    sink[i++] = realloc(nothing, 222);           /* LEAK: realloc-null 222 */

    void *gone = malloc(333);
    gone = realloc(gone, 0);                     /* realloc(p, 0) frees p: no leak */
    free(gone);                                  /* NULL, or a fresh minimum block */

    sink[i++] = reallocarray(nothing, 7, 11);    /* LEAK: reallocarray 77 */

    if (posix_memalign(&p, 64, 123) != 0)        /* LEAK: posix_memalign 123 */
        return 1;
    sink[i++] = p;

    sink[i++] = aligned_alloc(32, 160);          /* LEAK: aligned_alloc 160 */
    sink[i++] = memalign(256, 171);              /* LEAK: memalign 171 */
    sink[i++] = valloc(189);                     /* LEAK: valloc 189 */
    sink[i++] = pvalloc(201);                    /* LEAK: pvalloc 201 */

    for (int k = 0; k < i; k++)
        if (sink[k] == NULL)
            return 2;
    puts("alloc_kinds: 9 leaks");
    return 0;
}
