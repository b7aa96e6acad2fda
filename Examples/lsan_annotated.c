/* lsan_annotated.c: code annotated for LeakSanitizer through weak declarations, as LSan's
 * documentation shows, with no memdir header. Runs the same without any tool.
 * Leaks: one block between __lsan_disable/__lsan_enable (not reported), one passed to
 * __lsan_ignore_object (not reported), one plain (reported). Prints the recoverable check's
 * result as "recoverable N". */
#include <stdio.h>
#include <stdlib.h>

void __lsan_disable(void) __attribute__((weak));
void __lsan_enable(void) __attribute__((weak));
void __lsan_ignore_object(const void *p) __attribute__((weak));
void __lsan_register_root_region(const void *p, size_t size) __attribute__((weak));
void __lsan_unregister_root_region(const void *p, size_t size) __attribute__((weak));
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
void __lsan_do_leak_check(void) __attribute__((weak));

static void *volatile kept[4];
static char region[64];

int main(void) {
    if (__lsan_disable) __lsan_disable();
    kept[0] = malloc(51); /* LSAN-DISABLED */
    if (__lsan_enable) __lsan_enable();
    kept[1] = malloc(52); /* LSAN-IGNORED */
    if (__lsan_ignore_object) __lsan_ignore_object(kept[1]);
    kept[2] = malloc(53); /* LSAN-PLAIN */
    if (__lsan_register_root_region) __lsan_register_root_region(region, sizeof region);
    if (__lsan_unregister_root_region) __lsan_unregister_root_region(region, sizeof region);
    printf("recoverable %d\n", __lsan_do_recoverable_leak_check ? __lsan_do_recoverable_leak_check() : -2);
    if (__lsan_do_leak_check) __lsan_do_leak_check();
    printf("present %d\n", __lsan_disable != 0);
    return 0;
}
