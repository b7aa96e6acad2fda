/* launch: runs a command and writes its wall time, peak RSS and wait status to a file.
 *
 * usage: launch RESULT-FILE PROGRAM [ARG]...
 *
 * Why not measure from Python directly: on Linux a process keeps its peak RSS across exec, so
 * a child forked from the Python driver would report at least the driver's own RSS. This
 * small program is forked from Python, but PROGRAM is forked from it (a few hundred KiB), and
 * the wait4 rusage of PROGRAM is the one written: ru_maxrss of PROGRAM and the descendants it
 * waited for (the largest one, not the sum).
 *
 * The launcher must not itself be traced: the driver passes the preload library as
 * BENCH_LD_PRELOAD, which becomes LD_PRELOAD only in PROGRAM's environment.
 *
 * RESULT-FILE gets one line: "SECONDS MAXRSS_KIB WAIT_STATUS". The exit code is 0 when the
 * line was written, 127 when PROGRAM could not be started.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: launch RESULT-FILE PROGRAM [ARG]...\n"); return 2; }
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
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) { perror(argv[1]); return 127; }
    fprintf(out, "%.6f %ld %d\n", seconds, usage.ru_maxrss, status);
    return fclose(out) == 0 ? 0 : 127;
}
