/* stress/lib/churn.c: a tiny library for faults.c's dlopen tests. The tests build it once and
 * copy it under many names (each copy is a library of its own to the loader). `churn_leak`
 * leaks one block, allocated in this library. */
#include <stdlib.h>

void *churn_leak(size_t size) {
    char *block = malloc(size);
    if (block) block[0] = 1;
    return block;
}
