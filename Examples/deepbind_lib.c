// deepbind_lib.c: a library that deepbind.c opens with RTLD_DEEPBIND. Its own malloc and free
// bind to libc's first; strdup is libc's and reaches the tracker through libc. (heaptrack's
// test of the same case has this shape.)
#include <stdlib.h>
#include <string.h>

char *deepbind_copy(const char *text)
{
    return strdup(text);                  // LEAK: strdup
}

void *deepbind_block(void)
{
    return malloc(10);                    // LEAK: malloc 10
}

void deepbind_release(void *pointer)
{
    free(pointer);
}
