/* shm_posix.c: a POSIX shared-memory object, created with shm_open and sized with ftruncate.
 *   shm_posix leak NAME    never shm_unlink'ed: one segment outliving the process
 *   shm_posix fixed NAME   removed with shm_unlink: nothing to report
 * The mapping of it is a file mapping, unmapped before exit either way. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: shm_posix leak|fixed NAME\n"); return 2; }
    int fd = shm_open(argv[2], O_CREAT | O_EXCL | O_RDWR, 0600); /* SHM-OPEN */
    if (fd < 0 || ftruncate(fd, 4096) != 0) { perror("shm_open"); return 1; }
    char *addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) return 1;
    strcpy(addr, "shared");
    munmap(addr, 4096);
    close(fd);
    if (strcmp(argv[1], "fixed") == 0) shm_unlink(argv[2]);
    return 0;
}
