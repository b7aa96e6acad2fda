/* shm_anonymous.c: the seeds' first shared-memory example, written afresh: a parent shares an
 * anonymous MAP_SHARED mapping with a forked child, which writes the alphabet into it.
 *   shm_anonymous leak    the parent never unmaps it: one mapping still mapped at exit
 *   shm_anonymous fixed   the parent unmaps it, as the seeds do: nothing to report
 *   shm_anonymous destructor   a destructor unmaps it, during exit: nothing to report
 * The child waits on nothing and the parent waits for the child, instead of the seeds' sleeps. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *shm_mmap_alloc(size_t size) {
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_SHARED, -1, 0); /* MMAP-ANON */
    return addr == MAP_FAILED ? NULL : addr;
}

static int shm_mmap_free(void *addr, size_t size) { return munmap(addr, size); }

static char *unmap_at_the_end;
__attribute__((destructor)) static void unmap_late(void) {
    if (unmap_at_the_end) shm_mmap_free(unmap_at_the_end, 1024);
}

int main(int argc, char **argv) {
    int fixed = argc > 1 && strcmp(argv[1], "fixed") == 0;
    char *addr = shm_mmap_alloc(1024);
    if (!addr) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 26; i++) addr[i] = (char)('a' + i);
        addr[26] = '\0';
        shm_mmap_free(addr, 1024);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("parent: %s\n", addr);
    if (fixed) shm_mmap_free(addr, 1024);
    if (argc > 1 && strcmp(argv[1], "destructor") == 0) unmap_at_the_end = addr;
    return 0;
}
