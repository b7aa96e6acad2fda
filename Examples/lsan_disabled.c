/* lsan_disabled.c: LSan's meaning of __lsan_disable. A block allocated between __lsan_disable()
 * and __lsan_enable() is never reported, and it is still a root: the block it points to, made
 * after __lsan_enable(), is not lost. Under LSan this program reports only the plain leak
 * (33 bytes); before memdir kept disabled blocks as roots, the 77-byte
 * block was reported definitely lost too. Runs the same without any tool. */
#include <stdio.h>
#include <stdlib.h>

void __lsan_disable(void) __attribute__((weak));
void __lsan_enable(void) __attribute__((weak));

int main(void) {
    if (__lsan_disable) __lsan_disable();
    void **holder = malloc(4 * sizeof(void *)); /* LSAN-DISABLED-HOLDER */
    if (__lsan_enable) __lsan_enable();
    holder[0] = malloc(77); /* LSAN-DISABLED-HELD */
    holder[1] = holder[2] = holder[3] = NULL;
    holder = NULL;                             /* only the ignored block points to it now */
    void *plain = malloc(33); /* LSAN-DISABLED-PLAIN */
    printf("done\n");
    plain = NULL;
    return 0;
}
