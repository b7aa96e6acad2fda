/* leakcheck_heap: a synthetic heap for the leak check's cost (issue 8): BLOCKS blocks of
 * BYTES bytes (defaults 1,048,576 x 256 = 256 MiB) alive at exit.
 *
 * usage: leakcheck_heap [BLOCKS [BYTES [LOST_PER_MILLE]]]   (default 10 per mille lost)
 *
 * The blocks form a binary tree under a global, so marking walks all of them; every block's
 * other words hold small numbers (not pointers), like most real data. LOST_PER_MILLE of the
 * subtrees' roots are cut off before exit: they and what hangs below them are lost. The check
 * runs at exit; its leak-check record says how long it took (duration-us).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct block { struct block *left, *right; uint64_t data[]; };

static struct block **all;
struct block *volatile leakcheck_heap_root;   /* the root: a global the compiler must keep */

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 1L << 20;
    long bytes = argc > 2 ? atol(argv[2]) : 256;
    long lost_per_mille = argc > 3 ? atol(argv[3]) : 10;
    if (count < 1 || bytes < (long)sizeof(struct block)) return 2;
    all = malloc((size_t)count * sizeof *all);
    if (!all) return 1;
    for (long i = 0; i < count; i++) {
        struct block *b = malloc((size_t)bytes);
        if (!b) return 1;
        b->left = b->right = NULL;
        for (long w = 0; w < (bytes - (long)sizeof *b) / 8; w++) b->data[w] = (uint64_t)(i * 31 + w);
        all[i] = b;
    }
    for (long i = 1; i < count; i++) {   /* a heap-shaped tree: i's parent is (i - 1) / 2 */
        struct block *parent = all[(i - 1) / 2];
        if (i & 1) parent->left = all[i]; else parent->right = all[i];
    }
    leakcheck_heap_root = all[0];
    long cut = 0;
    for (long i = count / 2; i < count && lost_per_mille > 0; i += 1000 / lost_per_mille) {
        struct block *parent = all[(i - 1) / 2];   /* cut i off its parent: i's subtree is lost */
        if (parent->left == all[i]) parent->left = NULL; else parent->right = NULL;
        cut++;
    }
    free(all);   /* the index would keep everything reachable */
    printf("%ld blocks of %ld bytes, %ld subtrees cut off\n", count, bytes, cut);
    return 0;
}
