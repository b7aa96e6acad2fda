/* churn: many short-lived blocks.
 *
 * usage: churn [PAIRS [LIVE]]   (defaults: 2,000,000 pairs, 1,024 live)
 *
 * A ring of LIVE slots: step i frees slot i % LIVE and mallocs a new block into it, with a
 * size of 16..527 bytes from a fixed-seed xorshift generator, so every run does exactly the
 * same allocations. Each block lives LIVE steps (microseconds), far below MEM_SETTLE_MS. All
 * remaining blocks are freed at the end: nothing leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv) {
    long pairs = argc > 1 ? atol(argv[1]) : 2000000;
    long live = argc > 2 ? atol(argv[2]) : 1024;
    char **ring = calloc((size_t)live, sizeof *ring);
    if (ring == NULL) return 1;
    unsigned long checksum = 0;
    for (long i = 0; i < pairs; i++) {
        long slot = i % live;
        free(ring[slot]);
        size_t size = 16 + (size_t)(next_random() % 512);
        ring[slot] = malloc(size);
        if (ring[slot] == NULL) return 1;
        ring[slot][0] = (char)i;          /* touch the block so it is really used */
        checksum += (unsigned char)ring[slot][0] + size;
    }
    for (long slot = 0; slot < live; slot++) free(ring[slot]);
    free(ring);
    printf("churn: %ld pairs, %ld live, checksum %lu\n", pairs, live, checksum);
    return 0;
}
