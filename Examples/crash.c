/* crash.c: allocates three blocks, then dies: "segv" writes through NULL, "abort" calls abort(),
 * anything else exits 0. The blocks are younger than the settle time when the process dies. */
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
    return 0;
}
