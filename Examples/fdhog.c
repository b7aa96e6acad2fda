/* fdhog.c: opens /dev/null until the descriptors run out (run it with a low ulimit -n), then
 * allocates and leaks five blocks while none is left, and exits with every descriptor still
 * open. The tracker keeps no descriptor in the program's table (its threads have their own):
 * the records are written all the same, and nothing the program can see changes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile keep[5];

int main(void)
{
    int opened = 0, err = 0;
    for (int i = 0; i < 100000; i++) {
        if (open("/dev/null", O_RDONLY) < 0) {
            err = errno;
            break;
        }
        opened++;
    }
    for (int i = 0; i < 5; i++)
        keep[i] = malloc(777); /* LEAK: fdhog 777 */
    for (int i = 0; i < 1000; i++)
        free(malloc(32));
    usleep(150 * 1000); /* longer than the default settle time */
    const char *msg = err == EMFILE ? "fdhog: out of descriptors\n" : "fdhog: never ran out\n";
    if (write(1, msg, strlen(msg)) < 0)
        return 1;
    return opened > 0 ? 0 : 1;
}
