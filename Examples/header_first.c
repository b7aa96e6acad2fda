/* header_first.c: memtrack.h with MEMTRACK_SOURCE_LOCATIONS included before <stdlib.h> and
 * <string.h>; built -O2 without debug information, so only the header can name the lines. */
#define MEMTRACK_SOURCE_LOCATIONS
#include <memtrack.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

char *kept;

int main(void) {
    char *volatile lost = malloc(19); /* FIRST-MALLOC */
    kept = strdup("header first");    /* FIRST-STRDUP */
    lost = 0;   /* the only pointer to the 19 bytes is gone: definitely lost */
    if (lost) return 1;
    printf("%s\n", kept);
    return 0;
}
