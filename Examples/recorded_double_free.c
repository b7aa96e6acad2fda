/* recorded_double_free.c: double frees of blocks whose records had been written. Each block
 * lives until its record is in the run directory (MEM_DIR/<run>/0xADDRESS.mem), so the tracker
 * holds nothing of it in memory when it is freed. `early` is freed twice at once: its record's
 * removal is still queued for the writer. `late` is freed twice only after its record is gone:
 * the writer has removed it. Both reports should still give the size and the allocation. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 1 if some run directory under MEM_DIR holds the block's record. */
static int recorded(const void *block)
{
    const char *root = getenv("MEM_DIR");
    DIR *directory = root ? opendir(root) : NULL;
    if (!directory) return 0;
    int found = 0;
    for (struct dirent *entry; !found && (entry = readdir(directory));) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%p.mem", root, entry->d_name, block);
        found = faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    }
    closedir(directory);
    return found;
}

/* Waits (1 ms at a time, at most 20 s) until the record is there, or gone. */
static void wait_until_recorded(const void *block, int wanted)
{
    for (int waited = 0; recorded(block) != wanted; waited++) {
        if (waited == 20000) {
            fprintf(stderr, "recorded_double_free: the record of %p never %s\n", block, wanted ? "appeared" : "went");
            exit(2);
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

int main(void)
{
    char *early = malloc(40);                 // RECORDED: early malloc
    char *late = malloc(72);                  // RECORDED: late malloc
    wait_until_recorded(early, 1);
    wait_until_recorded(late, 1);
    free(early);                              // RECORDED: early first free
    free(early);                              // RECORDED: early second free
    free(late);                               // RECORDED: late first free
    wait_until_recorded(late, 0);
    free(late);                               // RECORDED: late second free
    puts("recorded_double_free: done");
    return 0;
}
