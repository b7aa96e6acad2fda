// annotated_cxx.cpp: memtrack.h from C++, built -O2 and stripped in the tests.
// Leaks one malloc (reported at its marked line) and one between pause and resume (not reported).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define MEMTRACK_SOURCE_LOCATIONS
#include "memtrack.h"

static void *volatile kept[2];

int main() {
    kept[0] = static_cast<char *>(malloc(61)); /* CXX-MALLOC */
    memtrack_pause();
    kept[1] = malloc(62);
    memtrack_resume();
    std::printf("loaded %d\n", memtrack_loaded());
    return 0;
}
