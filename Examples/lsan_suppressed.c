/* lsan_suppressed.c: LSan's suppressions_file test, in C. With `leak:*LSanTestLeakingFunc*`,
 * LSan reports only the 1,337-byte block: the 666-byte block is suppressed, and the 777-byte
 * block that only it reaches (indirectly lost) goes with it, because LSan treats a suppressed
 * block as a root. valgrind's suppressions match each loss record by its own stack, so a
 * valgrind-format entry for LSanTestLeakingFunc leaves the 777 bytes indirectly lost. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void *LSanTestLeakingFunc(void) {
    void *p = malloc(666); /* LSAN-SUPPRESSED-666 */
    fprintf(stderr, "Test alloc: %p.\n", p);
    return p;
}

__attribute__((noinline)) void LSanTestUnsuppressedLeakingFunc(void) {
    void **p = (void **)LSanTestLeakingFunc();
    *p = malloc(777); /* LSAN-SUPPRESSED-777 */
    fprintf(stderr, "Test alloc: %p.\n", *p);
}

int main(void) {
    LSanTestUnsuppressedLeakingFunc();
    void *q = malloc(1337); /* LSAN-SUPPRESSED-1337 */
    fprintf(stderr, "Test alloc: %p.\n", q);
    q = NULL;
    return 0;
}
