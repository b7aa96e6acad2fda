/* idle.c: allocates blocks, says "ready" on stdout (with write(2): no stdio buffer), then
 * sleeps for argv[1] seconds (default 5) in poll(), or in epoll_wait() with argv[2] = "epoll".
 * The survivors must get their files while it sleeps. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void *volatile keep[3];

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    int use_epoll = argc > 2 && strcmp(argv[2], "epoll") == 0;
    keep[0] = malloc(4001); /* LEAK: idle 4001 */
    keep[1] = calloc(1, 4002); /* LEAK: idle 4002 */
    keep[2] = malloc(4003); /* LEAK: idle 4003 */
    free(malloc(4004));
    if (write(1, "ready\n", 6) != 6)
        return 1;
    if (use_epoll) {
        int ep = epoll_create1(0);
        struct epoll_event ev;
        epoll_wait(ep, &ev, 1, seconds * 1000);
        close(ep);
    } else {
        poll(NULL, 0, seconds * 1000);
    }
    if (write(1, "done\n", 5) != 5)
        return 1;
    return 0;
}
