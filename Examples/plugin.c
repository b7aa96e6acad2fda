/* plugin.c: built as plugin.so, dlopened and dlclosed by dlopen_leak. */
#include <stdlib.h>

void *plugin_leak(void)
{
    void *p = malloc(4321); /* LEAK: plugin */
    return p;
}
