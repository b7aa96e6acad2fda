/* stale_free.c: a stale free. p is freed, q gets a block of the same size (without quarantine
 * glibc hands back p's address), then p is freed again. With the tracker's quarantine on this is
 * a double free and q survives as a leak; with MEM_QUARANTINE=0 (or without the tracker) the
 * second free(p) silently frees q, and nothing is reported: that is the point of quarantine.
 * Prints "same" when q landed on p's address, "different" otherwise. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile keep;

int main(void)
{
    char *p = malloc(48);
    free(p);
    char *q = malloc(48); /* LEAK: q */
    keep = q;
    int same = p == q;
    free(p); /* STALE-FREE: p */
    puts(same ? "same" : "different");
    return 0;
}
