/* lsan_roots.c: LSan's annotations change the leak check's verdicts as they do under LSan.
 *   - a root region registered inside a block makes what that block points to reachable (the
 *     block itself is still lost: registering memory does not make it reachable);
 *   - an ignored object is scanned as a root: what only it points to is reachable;
 *   - a plain lost block stays definitely lost.
 * Prints "expect ADDRESS KIND" for every block it makes, and the on-demand check's result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void __lsan_ignore_object(const void *p) __attribute__((weak));
void __lsan_register_root_region(const void *p, size_t size) __attribute__((weak));
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void expect(void *p, const char *kind) { printf("expect %p %s\n", p, kind); }

/* Hides a pointer from the scan: stored as its complement. */
static uintptr_t hidden[3];

__attribute__((noinline)) static void make_blocks(void) {
    void **region_holder = malloc(4 * sizeof(void *));   /* lost, but a root region */
    void *through_region = malloc(40);                    /* reachable through the region */
    region_holder[0] = through_region;
    if (__lsan_register_root_region) __lsan_register_root_region(region_holder, 4 * sizeof(void *));
    expect(region_holder, "definitely");
    expect(through_region, "reachable");

    void **ignored = malloc(2 * sizeof(void *));          /* ignored: never reported, a root */
    void *through_ignored = malloc(48);                   /* reachable through the ignored block */
    ignored[0] = through_ignored;
    if (__lsan_ignore_object) __lsan_ignore_object(ignored);
    expect(through_ignored, "reachable");

    void *plain = malloc(56);                              /* definitely lost */
    expect(plain, "definitely");

    hidden[0] = ~(uintptr_t)region_holder;
    hidden[1] = ~(uintptr_t)ignored;
    hidden[2] = ~(uintptr_t)plain;
}

/* Zeroes the stack below main's frame, where make_blocks' frame held the addresses. */
__attribute__((noinline)) static void scrub_stack(void) {
    volatile char scrub[16384];
    for (size_t i = 0; i < sizeof scrub; i++) scrub[i] = 0;
}

int main(void) {
    make_blocks();
    scrub_stack();
    printf("recoverable %d\n", __lsan_do_recoverable_leak_check ? __lsan_do_recoverable_leak_check() : -2);
    fflush(stdout);
    return 0;
}
