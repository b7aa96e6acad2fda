/* shm_partial.c: partial munmap and mremap of a tracked shared mapping.
 * Maps 4 pages, unmaps page 1 (a hole: two records), then page 0 (the lower record goes), then
 * grows pages 2-3 to 5 pages with mremap (the record follows). Prints "left 0xADDR SIZE": the
 * one mapping still mapped at exit. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* PARTIAL-MMAP */
    if (base == MAP_FAILED) return 1;
    munmap(base + page, page);
    munmap(base, page);
    char *grown = mremap(base + 2 * page, 2 * page, 5 * page, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) return 1;
    printf("left %p %zu\n", (void *)grown, 5 * page);
    return 0;
}
