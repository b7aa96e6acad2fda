/* stress/reuse.c: freed addresses handed out again at once (run with MEM_QUARANTINE=0) while
 * the pending table is full. Round 1 allocates N blocks of 48 bytes and frees them all; round 2
 * allocates N blocks of 48 bytes again (mostly the same addresses) and leaks them. Expected
 * record: exactly N blocks of 48 bytes. Usage: reuse [N=20000] [rounds=1] */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    void **blocks = calloc((size_t)n, sizeof *blocks);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) blocks[i] = malloc(48);
        for (int i = 0; i < n; i++) free(blocks[i]);
    }
    for (int i = 0; i < n; i++) blocks[i] = malloc(48);
    usleep(200000);
    printf("leaked %d\n", n);
    __asm__ volatile("" ::"r"(blocks) : "memory");
    return 0;
}
