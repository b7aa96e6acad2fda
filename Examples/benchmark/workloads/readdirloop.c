/* readdirloop: the least a reader of a run directory must do, as a floor for `memdir list`.
 *
 * usage: readdirloop DIR
 *
 * opendir/readdir over DIR; for each entry other than . and ..: a symlink (block record
 * format 2) is read with one readlinkat; any other file with openat(O_RDONLY), one read into a
 * 4 KiB buffer, close. Prints the number of files and bytes read.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: readdirloop DIR\n"); return 2; }
    DIR *dir = opendir(argv[1]);
    if (dir == NULL) { perror(argv[1]); return 1; }
    int dirfd_ = dirfd(dir);
    char buffer[4096];
    long files = 0, bytes = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *n = entry->d_name;
        if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
        if (entry->d_type == DT_LNK) {
            ssize_t got = readlinkat(dirfd_, n, buffer, sizeof buffer);
            if (got < 0) { perror(n); return 1; }
            bytes += got;
            files++;
            continue;
        }
        int fd = openat(dirfd_, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) { perror(n); return 1; }
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0) { perror(n); return 1; }
        bytes += got;
        files++;
        close(fd);
    }
    closedir(dir);
    printf("readdirloop: %ld files, %ld bytes\n", files, bytes);
    return 0;
}
