/* shm_sysv.c: the seeds' third shared-memory example, written afresh: a SysV segment shared
 * with a forked child. Both detach it, but, as in the seeds, nobody removes it.
 *   shm_sysv leak    no IPC_RMID: the segment outlives the process (one segment reported)
 *   shm_sysv fixed   the parent removes it with shmctl(IPC_RMID): nothing to report
 * Prints "id N" first, so that a test can remove a leaked segment whatever happens. */
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int segment_id = -1;

static void *shm_alloc(size_t size) {
    segment_id = shmget(IPC_PRIVATE, size, IPC_CREAT | IPC_EXCL | S_IRUSR | S_IWUSR); /* SHMGET */
    if (segment_id < 0) return NULL;
    printf("id %d\n", segment_id);
    fflush(stdout);
    void *addr = shmat(segment_id, NULL, 0); /* SHMAT */
    return addr == (void *)-1 ? NULL : addr;
}

static int shm_free(void *addr) { return shmdt(addr); }

int main(int argc, char **argv) {
    int fixed = argc > 1 && strcmp(argv[1], "fixed") == 0;
    int detach = !(argc > 1 && strcmp(argv[1], "attached") == 0);
    char *addr = shm_alloc(1024);
    if (!addr) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 26; i++) addr[i] = (char)('a' + i);
        addr[26] = '\0';
        shm_free(addr);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("parent: %s\n", addr);
    if (detach) shm_free(addr);
    if (fixed) shmctl(segment_id, IPC_RMID, NULL);
    return 0;
}
