/* manylive: a large live set, for the record's scale.
 *
 * usage: manylive BLOCKS [free [HOLD_MS]]
 *
 * Allocates BLOCKS blocks with malloc, block i of 16 + i % 64 bytes, all from one call site
 * (line 22), and leaves them live at exit: BLOCKS leaks of known total size. With `free`, frees
 * them all before exit instead: a clean record; HOLD_MS holds them that long first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    long blocks = argc > 1 ? atol(argv[1]) : 1000;
    int free_all = argc > 2 && strcmp(argv[2], "free") == 0;
    long hold_ms = argc > 3 ? atol(argv[3]) : 0;
    char **kept = free_all ? malloc((size_t)blocks * sizeof *kept) : NULL;
    if (free_all && !kept) return 1;
    unsigned long total = 0;
    for (long i = 0; i < blocks; i++) {
        char *block = malloc(16 + (size_t)(i % 64));
        if (!block) return 1;
        block[0] = (char)i;
        total += 16 + (unsigned long)(i % 64);
        if (free_all) kept[i] = block;
    }
    if (free_all) {
        struct timespec hold = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
        if (hold_ms > 0) nanosleep(&hold, NULL);
        for (long i = 0; i < blocks; i++) free(kept[i]);
        free(kept);
    }
    printf("%lu\n", total);
    return 0;
}
