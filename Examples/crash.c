/* crash.c: allocates three blocks, then dies: "segv" writes through NULL, "abort" calls abort(),
 * "glibc-abort" corrupts a chunk header so that glibc's free aborts, anything else exits 0. The blocks are younger than the settle time when the process dies. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep[3];
static int *volatile nowhere;

int main(int argc, char **argv)
{
    keep[0] = malloc(1234); /* LEAK: crash 1234 */
    keep[1] = malloc(2345); /* LEAK: crash 2345 */
    keep[2] = malloc(3456); /* LEAK: crash 3456 */
    free(malloc(99));
    if (argc > 1 && strcmp(argv[1], "segv") == 0)
        *nowhere = 1; /* SEGV */
    if (argc > 1 && strcmp(argv[1], "abort") == 0)
        abort(); /* ABORT */
    if (argc > 1 && strcmp(argv[1], "glibc-abort") == 0) {
        /* A heap overrun that wrecks the next chunk's size: glibc's own check aborts in free
         * ("munmap_chunk(): invalid pointer"), as it does for the corruption a double free causes. */
        size_t *block = malloc(24);
        block[-1] = 0x3;
        free(block); /* GLIBC-ABORT */
    }
    return 0;
}
