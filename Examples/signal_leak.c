// signal_leak.c: a block allocated in a signal handler. Its stack goes through the signal
// frame into the code the signal interrupted: interrupted_work, then main.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile keep;

static void on_signal(int signal_number)
{
    (void)signal_number;
    keep = malloc(64);                                    // LEAK: handler
}

static __attribute__((noinline)) void interrupted_work(void)
{
    kill(getpid(), SIGWINCH);                             // SIGNAL: interrupted
}

int main(void)
{
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGWINCH, &action, NULL);
    sigset_t unblock;   // a test runner may start us with signals blocked
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGWINCH);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    interrupted_work();                                   // SIGNAL: main
    puts("signal_leak: done");
    return 0;
}
