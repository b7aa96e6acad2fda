/* helpers.c: leaks through glibc functions that allocate for their caller. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep[4];

int main(void)
{
    char *dup = strdup("twelve chars");                           /* LEAK: strdup 13 */
    keep[0] = dup;

    char *formatted = NULL;
    if (asprintf(&formatted, "%s and %d more", dup, 1234567) < 0) /* LEAK: asprintf */
        return 1;
    keep[1] = formatted;

    static char text[] = "first line\nsecond line\n";
    FILE *in = fmemopen(text, sizeof text - 1, "r");
    if (in == NULL)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, in) < 0)                             /* LEAK: getline */
        return 1;
    fclose(in);
    keep[2] = line;

    printf("helpers: %s|%s|%s", dup, formatted, line);
    return 0;
}
