/* livemany: a large live set left at exit.
 *
 * usage: livemany [BLOCKS]   (default 1,000,000)
 *
 * Allocates BLOCKS blocks of 16..79 bytes (fixed-seed sizes) and exits without freeing them:
 * every one is a leak, so every one ends as a record. Measures the cost of writing a large live
 * set and the memory its records take.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long blocks = argc > 1 ? atol(argv[1]) : 1000000;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    unsigned long checksum = 0;
    for (long i = 0; i < blocks; i++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        char *block = malloc(16 + rng % 64);
        if (!block) return 1;
        block[0] = (char)i;
        checksum += (uintptr_t)block & 0xff;
    }
    printf("%lu\n", checksum);
    return 0;
}
