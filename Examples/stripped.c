// stripped.c: built, then stripped of every symbol but the exported ones (-rdynamic keeps
// exported_helper and main in .dynsym). A leak in the static function hidden_leaker must not
// be named after exported_helper, the nearest symbol below it; a leak inside exported_helper
// is rightly named after it.
#include <stdio.h>
#include <stdlib.h>

static void *volatile keep[2];

void exported_helper(void)
{
    keep[0] = malloc(31);                 // LEAK: helper
}

static __attribute__((noinline)) void hidden_leaker(void)
{
    keep[1] = malloc(47);                 // LEAK: hidden
}

int main(void)
{
    exported_helper();
    hidden_leaker();
    puts("stripped: 2 leaks");
    return 0;
}
