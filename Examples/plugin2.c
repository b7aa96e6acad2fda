/* plugin2.c: built as plugin2.so; dlopen_leak loads it after plugin.so is gone, so it is likely
 * mapped where plugin.so was (the module map's seq decides which one an address belongs to). */
#include <stdlib.h>

static char padding[64];

void *plugin2_leak(void)
{
    padding[0]++;
    void *p = malloc(5432); /* LEAK: plugin2 */
    return p;
}
