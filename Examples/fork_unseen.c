// fork_unseen.c: children made without fork's handlers: glibc's _Fork (`fork_unseen _Fork`)
// or a raw clone system call (`fork_unseen clone`). Each child allocates and leaks a block;
// it must get a record of its own, and the parent's record must hold only the parent's leak.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t _Fork(void);   // glibc 2.34

static void *volatile keep[2];

int main(int argc, char **argv)
{
    int raw_clone = argc > 1 && strcmp(argv[1], "clone") == 0;
    keep[0] = malloc(21);                                        // LEAK: parent
    pid_t child = raw_clone ? (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0) : _Fork();
    if (child < 0) return 2;
    if (child == 0) {
        keep[1] = malloc(42);                                    // LEAK: child
        exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 2;
    puts("fork_unseen: done");
    return 0;
}
