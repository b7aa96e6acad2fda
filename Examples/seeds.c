/* seeds.c: the seeds' scenario. p3 leaks; p4 is freed twice.
 * With the argument --addresses it prints where p3 and p4 live (for the tests); without
 * arguments it prints nothing, like the original. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int show = argc > 1 && strcmp(argv[1], "--addresses") == 0;
    char *p1 = malloc(10);
    char *p2 = malloc(20);
    free(p1);
    char *p3 = malloc(30); /* LEAK: p3 */
    char *p4 = malloc(40); /* ALLOC: p4 */
    if (show) {
        printf("p3=%p\np4=%p\n", (void *)p3, (void *)p4);
        fflush(stdout);
    }
    free(p2);
    free(p4); /* FIRST-FREE: p4 */
    free(p4); /* DOUBLE-FREE: p4 */
    return 0;
}
