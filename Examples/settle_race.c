/* settle_race.c: blocks that live about as long as the settle time, so the writer thread
 * writes many of them and the program frees them while it works; everything is freed before
 * exit, so the record must end empty. Run with MEM_SETTLE_MS=1. A block left behind means a
 * removal was lost (the writer must finish its pass before the process ends).
 * Argument "realloc": half the replacements go through realloc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 4096

int main(int argc, char **argv)
{
    int use_realloc = argc > 1 && strcmp(argv[1], "realloc") == 0;
    static void *slot[SLOTS];
    uint32_t state = 1;
    for (int round = 0; round < 60000; round++) {
        state = state * 1103515245 + 12345;
        int i = (int)((state >> 8) % SLOTS);
        size_t size = 16 + (state >> 20) % 700;
        if (slot[i] && use_realloc && (state & 1)) {
            slot[i] = realloc(slot[i], size);
        } else {
            free(slot[i]);
            slot[i] = malloc(size);
        }
        if (round % 500 == 0)
            usleep(300); /* let blocks age past the settle time */
    }
    for (int i = 0; i < SLOTS; i++)
        free(slot[i]);
    return 0;
}
