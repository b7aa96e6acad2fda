/* server.c: an idle server that never exits on its own, driven line by line on stdin so tests
 * need no sleeps. Only read(2)/write(2): no stdio buffer allocates behind the test's back.
 *   grow N SIZE   keep N more blocks of SIZE bytes from one place (the growing group)
 *   lose N SIZE   allocate N blocks of SIZE bytes and drop every pointer to them (lost)
 *   work N        a fixed mix of entry points (see work()), then report its own tally
 *   wait MS       sleep MS milliseconds in poll() (so a test can age blocks without sleeping)
 *   quit          free what grow kept and exit 0
 * Every command is answered with one line, after which its allocations are done. */
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void **kept;
static size_t kept_count, kept_capacity;

static void say(const char *text) {
    if (write(1, text, strlen(text)) < 0) _exit(2);
}

static void grow(size_t n, size_t size) {
    for (size_t i = 0; i < n; i++) {
        if (kept_count == kept_capacity) {
            kept_capacity = kept_capacity ? kept_capacity * 2 : 1024;
            kept = realloc(kept, kept_capacity * sizeof *kept); /* SERVER: index */
        }
        kept[kept_count++] = malloc(size); /* SERVER: grow */
    }
}

/* The pointers live only in this frame's registers and in a block that is itself lost: once
 * it returns, nothing points to them. */
__attribute__((noinline)) static void lose(size_t n, size_t size) {
    for (size_t i = 0; i < n; i++) {
        volatile char *block = malloc(size); /* SERVER: lose */
        block[0] = 1;
    }
}

/* malloc(i*7+1) for i < n, calloc(i+1, 3), one realloc each, a posix_memalign, then frees half.
 * Prints "work heap-delta=D" where D is the change in malloc_usable_size of what stays live. */
static void work(size_t n) {
    long long delta = 0;
    void **blocks = calloc(n, sizeof *blocks);
    delta += (long long)malloc_usable_size(blocks);
    for (size_t i = 0; i < n; i++) {
        void *a = malloc(i * 7 + 1);
        void *b = calloc(i + 1, 3);
        void *c = realloc(b, i * 5 + 40);
        blocks[i] = c;
        delta += (long long)malloc_usable_size(c);
        free(a);
    }
    void *aligned = NULL;
    if (posix_memalign(&aligned, 64, 1000) == 0) delta += (long long)malloc_usable_size(aligned);
    for (size_t i = 0; i < n; i += 2) {
        delta -= (long long)malloc_usable_size(blocks[i]);
        free(blocks[i]);
    }
    char line[64];
    snprintf(line, sizeof line, "work heap-delta=%lld\n", delta);
    say(line);
}

int main(void) {
    char line[256];
    size_t used = 0;
    say("ready\n");
    for (;;) {
        ssize_t got = read(0, line + used, sizeof line - 1 - used);
        if (got <= 0) return 0;
        used += (size_t)got;
        char *newline;
        while ((newline = memchr(line, '\n', used))) {
            *newline = 0;
            size_t a = 0, b = 0;
            if (sscanf(line, "grow %zu %zu", &a, &b) == 2) {
                grow(a, b);
                char reply[64];
                snprintf(reply, sizeof reply, "grew %zu\n", kept_count);
                say(reply);
            } else if (sscanf(line, "lose %zu %zu", &a, &b) == 2) {
                lose(a, b);
                say("lost\n");
            } else if (sscanf(line, "wait %zu", &a) == 1) {
                poll(NULL, 0, (int)a);
                say("waited\n");
            } else if (sscanf(line, "work %zu", &a) == 1) {
                work(a);
            } else if (strcmp(line, "quit") == 0) {
                for (size_t i = 0; i < kept_count; i++) free(kept[i]);
                free(kept);
                say("bye\n");
                return 0;
            } else {
                say("?\n");
            }
            size_t consumed = (size_t)(newline - line) + 1;
            memmove(line, newline + 1, used - consumed);
            used -= consumed;
        }
    }
}
