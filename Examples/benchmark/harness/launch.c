/* launch: runs a command and writes its wall time, peak RSS and wait status to a file.
 *
 * usage: launch RESULT-FILE PROGRAM [ARG]...
 *
 * Why not measure from Python directly: on Linux a process keeps its peak RSS across exec, so
 * a child forked from the Python driver would report at least the driver's own RSS. This
 * small program is forked from Python, but PROGRAM is forked from it (a few hundred KiB).
 *
 * Peak RSS of the whole tree: wait4's rusage of PROGRAM covers PROGRAM and the descendants
 * its processes waited for (the largest one, not the sum), but not a descendant nobody waited
 * for. So the launcher is a child subreaper: orphans of the tree become its children. After
 * PROGRAM exits, the ones already gone are reaped, those still running are killed and reaped
 * (counted as LEFTOVERS), and getrusage(RUSAGE_CHILDREN) then gives the largest process of
 * the whole tree, heaptrack's interpreter included whoever waited for it.
 *
 * The launcher must not itself be traced: the driver passes the preload library as
 * BENCH_LD_PRELOAD, which becomes LD_PRELOAD only in PROGRAM's environment.
 *
 * RESULT-FILE gets one line:
 *   "SECONDS MAXRSS_KIB WAIT_STATUS TREE_MAXRSS_KIB LEFTOVERS"
 * MAXRSS_KIB is wait4's for PROGRAM, TREE_MAXRSS_KIB the largest process of the tree. The exit
 * code is 0 when the line was written, 127 when PROGRAM could not be started.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Kills the launcher's children still running (orphans adopted as subreaper) and reaps every
 * child until none is left; returns how many had to be killed. A killed child's own children
 * are adopted in turn, hence the loop. */
static int reap_tree(void) {
    int killed = 0;
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
        FILE *children = fopen(path, "r");
        int pid, found = 0;
        while (children != NULL && fscanf(children, "%d", &pid) == 1) {
            kill(pid, SIGKILL);
            killed++;
            found = 1;
        }
        if (children != NULL) fclose(children);
        if (!found) {
            /* without /proc/.../children (or nothing left): block until no child remains */
            while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
            return killed;
        }
        while (waitpid(-1, NULL, 0) > 0) {}
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: launch RESULT-FILE PROGRAM [ARG]...\n"); return 2; }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 127; }
    if (pid == 0) {
        const char *preload = getenv("BENCH_LD_PRELOAD");
        if (preload != NULL) {
            setenv("LD_PRELOAD", preload, 1);
            unsetenv("BENCH_LD_PRELOAD");
        }
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) { perror("wait4"); return 127; }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    int leftovers = reap_tree();
    struct rusage tree;
    getrusage(RUSAGE_CHILDREN, &tree);
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) { perror(argv[1]); return 127; }
    fprintf(out, "%.6f %ld %d %ld %d\n", seconds, usage.ru_maxrss, status, tree.ru_maxrss,
            leftovers);
    return fclose(out) == 0 ? 0 : 127;
}
