/* stress/forkchurn.c: the main thread forks `forks` times while `workers` threads churn
 * malloc/free. Each child frees every block the main thread allocated before the fork
 * (inherited), allocates and leaks 2 blocks of 3000+i bytes, and exits 0 (exit or _exit
 * alternately). The parent leaks one block of 777 bytes. Exit 0 when every child exited 0.
 * Usage: forkchurn [forks=50] [workers=4] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
    unsigned seed = (unsigned)(long)arg;
    void *slots[256] = {0};
    while (!atomic_load(&stop)) {
        seed = seed * 1103515245u + 12345u;
        int s = (seed >> 8) % 256;
        if (slots[s]) { free(slots[s]); slots[s] = NULL; }
        else if (seed & 0x100000) slots[s] = realloc(NULL, 1 + (seed >> 12) % 2048);
        else slots[s] = malloc(1 + (seed >> 12) % 700);
    }
    for (int s = 0; s < 256; s++) free(slots[s]);
    return NULL;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 50, workers = argc > 2 ? atoi(argv[2]) : 4;
    pthread_t threads[64];
    for (int w = 0; w < workers && w < 64; w++) pthread_create(&threads[w], NULL, churn, (void *)(long)(w + 1));
    int failures = 0;
    for (int i = 0; i < forks; i++) {
        void *inherited[32];
        for (int k = 0; k < 32; k++) inherited[k] = malloc(64 + (size_t)k);
        usleep(1000);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            for (int k = 0; k < 32; k++) free(inherited[k]);
            for (int k = 0; k < 2; k++) {
                char *leak = malloc(3000 + (size_t)i);
                leak[0] = 1;
                __asm__ volatile("" ::"r"(leak) : "memory");
            }
            void *tmp = malloc(100);
            free(tmp);
            if (i & 1) _exit(0);
            exit(0);
        }
        for (int k = 0; k < 32; k++) free(inherited[k]);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: status %#x\n", i, status);
            failures++;
        }
    }
    atomic_store(&stop, 1);
    for (int w = 0; w < workers && w < 64; w++) pthread_join(threads[w], NULL);
    char *leak = malloc(777);
    leak[0] = 1;
    __asm__ volatile("" ::"r"(leak) : "memory");
    printf("forks done, %d failures\n", failures);
    return failures ? 1 : 0;
}
