/* stress/edge.c: edge cases of the allocation API. Prints one line per check ("ok NAME" or
 * "FAIL NAME ..."), leaks exactly: malloc(0) [size 0], realloc(NULL, 0) [size 0],
 * aligned_alloc(256, 512) [512], and makes two invalid frees (a stack address, p+16).
 * Exit status: the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static void check(int ok, const char *name, const char *detail) {
    printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name, ok ? "" : " ", ok ? "" : detail);
    if (!ok) failures++;
}
static void *volatile sink;
static void keep(void *p) { sink = p; __asm__ volatile("" ::"r"(p) : "memory"); }

int main(void) {
    char detail[128];
    void *zero = malloc(0);
    check(zero != NULL, "malloc(0) returns a block", "NULL");
    keep(zero);

    errno = 1234;
    free(NULL);
    check(errno == 1234, "free(NULL) keeps errno", "");

    void *p = malloc(40);
    errno = 0;
    void *r = realloc(p, 0);   /* glibc: frees p, returns NULL */
    snprintf(detail, sizeof detail, "returned %p errno %d", r, errno);
    check(r == NULL && errno == 0, "realloc(p, 0) frees and returns NULL, errno untouched", detail);

    void *volatile no_block = NULL;   /* volatile: the compiler would turn realloc(NULL, n) into malloc(n) */
    void *rz = realloc(no_block, 0);
    check(rz != NULL, "realloc(NULL, 0) returns a block", "NULL");
    keep(rz);

    errno = 0;
    void *huge = malloc(1UL << 60);
    snprintf(detail, sizeof detail, "returned %p errno %d", huge, errno);
    check(huge == NULL && errno == ENOMEM, "malloc(1<<60) fails with ENOMEM", detail);

    errno = 0;
    void *huge2 = calloc(1UL << 40, 1UL << 30);
    snprintf(detail, sizeof detail, "returned %p errno %d", huge2, errno);
    check(huge2 == NULL && errno == ENOMEM, "calloc overflow fails with ENOMEM", detail);

    void *q = malloc(64);
    errno = 0;
    void *grown = realloc(q, 1UL << 60);
    snprintf(detail, sizeof detail, "returned %p errno %d", grown, errno);
    check(grown == NULL && errno == ENOMEM, "realloc(q, 1<<60) fails with ENOMEM, q kept", detail);
    free(q);

    void *aligned = (void *)1;
    errno = 4321;
    int error = posix_memalign(&aligned, 24, 100);
    snprintf(detail, sizeof detail, "returned %d errno %d pointer %p", error, errno, aligned);
    check(error == EINVAL && errno == 4321 && aligned == (void *)1,
          "posix_memalign(bad alignment) returns EINVAL, errno and *result untouched", detail);

    void *a = aligned_alloc(256, 512);
    check(a && ((uintptr_t)a & 255) == 0, "aligned_alloc(256, 512) is aligned", "");
    keep(a);

    void *m = memalign(4096, 100);
    check(m && ((uintptr_t)m & 4095) == 0, "memalign(4096) is aligned", "");
    free(m);

    errno = 777;
    void *ok = malloc(100);
    snprintf(detail, sizeof detail, "errno %d", errno);
    check(ok && errno == 777, "successful malloc keeps errno", detail);
    errno = 778;
    free(ok);
    snprintf(detail, sizeof detail, "errno %d", errno);
    check(errno == 778, "free keeps errno", detail);

    errno = 779;
    void *c = calloc(10, 10);
    snprintf(detail, sizeof detail, "errno %d", errno);
    check(c && errno == 779, "successful calloc keeps errno", detail);
    errno = 780;
    void *c2 = realloc(c, 5000);
    snprintf(detail, sizeof detail, "errno %d", errno);
    check(c2 && errno == 780, "successful realloc keeps errno", detail);
    free(c2);

    /* Invalid frees: reported, not passed to free, the program goes on. */
    char on_stack[64];
    keep(on_stack);
    free(on_stack + 16);
    char *block = malloc(100);
    free(block + 16);
    free(block);
    check(1, "survived invalid frees", "");

    errno = 0;
    void *rr = reallocarray(NULL, SIZE_MAX / 2, 4);
    snprintf(detail, sizeof detail, "returned %p errno %d", rr, errno);
    check(rr == NULL && errno == ENOMEM, "reallocarray overflow fails with ENOMEM", detail);

    fflush(stdout);
    return failures;
}
