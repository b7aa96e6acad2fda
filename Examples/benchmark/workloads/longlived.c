/* longlived: many blocks that stay alive, so each one becomes a record file.
 *
 * usage: longlived [BLOCKS [HOLD_MS [leak]]]   (defaults: 100,000 blocks, 0 ms)
 *
 * Allocates BLOCKS blocks of 16..271 bytes and keeps all of them, sleeps HOLD_MS, then frees
 * them all before exit, so a memtrack run directory ends with no .mem file. With "leak" as the
 * third argument the blocks are not freed: every one of them must then be left as a file (the
 * benchmark uses that, untimed, to check the file count).
 *
 * The timed benchmark uses HOLD_MS 0: in synchronous mode (MEM_SETTLE_MS=0) every block gets
 * its file before malloc returns and loses it in free, which is the work fileloop.c does
 * directly. In the default deferred mode blocks this young may never get a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    long blocks = argc > 1 ? atol(argv[1]) : 100000;
    long hold_ms = argc > 2 ? atol(argv[2]) : 0;
    int leak = argc > 3 && strcmp(argv[3], "leak") == 0;
    char **kept = malloc((size_t)blocks * sizeof *kept);
    if (kept == NULL) return 1;
    for (long i = 0; i < blocks; i++) {
        kept[i] = malloc(16 + (size_t)((i * 2654435761u) % 256));
        if (kept[i] == NULL) return 1;
        kept[i][0] = (char)i;
    }
    if (hold_ms > 0) {
        struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (!leak) {
        for (long i = 0; i < blocks; i++) free(kept[i]);
        free(kept);
    }
    printf("longlived: %ld blocks%s\n", blocks, leak ? " leaked" : " freed");
    return 0;
}
