/* forking.c: blocks cross fork and exec.
 * The parent allocates three blocks, then forks three children:
 *   1. frees the inherited blocks (not double frees: they are its own copies), leaks 1111
 *      bytes and returns from a function that calls exit(0);
 *   2. frees the inherited blocks, leaks 2222 bytes and calls _exit(0);
 *   3. frees the inherited blocks and execs /bin/true (a new image: a run directory of its own).
 * The parent waits for all three, frees its blocks, leaks 3333 bytes and exits 0.
 * No stdio before the forks, so no buffer is shared. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile keep;
static char *a, *b, *c;

static void free_inherited(void)
{
    free(a);
    free(b);
    free(c);
}

static pid_t spawn(int which)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    free_inherited();
    switch (which) {
    case 1:
        keep = malloc(1111); /* LEAK: child-exit */
        exit(0);
    case 2:
        keep = malloc(2222); /* LEAK: child-_exit */
        _exit(0);
    default:
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
}

int main(void)
{
    a = malloc(100);
    b = malloc(200);
    c = malloc(300);
    int failures = 0;
    for (int which = 1; which <= 3; which++) {
        int status;
        pid_t pid = spawn(which);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failures++;
    }
    free_inherited();
    keep = malloc(3333); /* LEAK: parent */
    printf("forking: %d children failed\n", failures);
    return failures != 0;
}
