/* shm_dev_zero.c: the seeds' second shared-memory example, written afresh: the same as
 * shm_anonymous.c, with the shared mapping made from /dev/zero.
 *   shm_dev_zero leak    the parent never unmaps it: one mapping still mapped at exit
 *   shm_dev_zero fixed   the parent unmaps it: nothing to report */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *shm_mmap_alloc(size_t size) {
    int fd = open("/dev/zero", O_RDWR);
    if (fd < 0) return NULL;
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); /* MMAP-DEV-ZERO */
    close(fd);
    return addr == MAP_FAILED ? NULL : addr;
}

static int shm_mmap_free(void *addr, size_t size) { return munmap(addr, size); }

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
    return 0;
}
