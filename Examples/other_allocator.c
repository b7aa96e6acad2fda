/* other_allocator.c: a stand-in for an allocator that is not glibc's (jemalloc, tcmalloc), for
 * the tests: preloaded after libmemtrack.so, it is the tracker's "next" allocator. Each block
 * carries a 16-byte header of its own (the start of the underlying block, the requested size),
 * and malloc_usable_size returns the requested size, so a tracker that read glibc's chunk
 * header here would count the wrong heap. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static void *allocate(size_t alignment, size_t size) {
    if (alignment < 16) alignment = 16;
    if (size > SIZE_MAX / 2) return NULL;
    char *base = __libc_memalign(16, size + alignment + 16);
    if (!base) return NULL;
    uintptr_t user = ((uintptr_t)base + 16 + alignment - 1) & ~(uintptr_t)(alignment - 1);
    ((void **)user)[-2] = base;
    ((size_t *)user)[-1] = size;
    return (void *)user;
}

size_t malloc_usable_size(void *pointer) { return pointer ? ((size_t *)pointer)[-1] : 0; }
void free(void *pointer) { if (pointer) __libc_free(((void **)pointer)[-2]); }
void cfree(void *pointer) { free(pointer); }
void *malloc(size_t size) { return allocate(16, size); }
void *memalign(size_t alignment, size_t size) { return allocate(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { return allocate(alignment, size); }
void *valloc(size_t size) { return allocate((size_t)getpagesize(), size); }
void *pvalloc(size_t size) { size_t page = (size_t)getpagesize(); return allocate(page, (size + page - 1) & ~(page - 1)); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    void *block = allocate(alignment, size);
    if (!block) return ENOMEM;
    *out = block;
    return 0;
}
void *calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *block = allocate(16, count * size);
    if (block) memset(block, 0, count * size);
    return block;
}
void *realloc(void *pointer, size_t size) {
    if (!pointer) return malloc(size);
    void *moved = malloc(size);
    if (!moved) return NULL;
    size_t old = malloc_usable_size(pointer);
    memcpy(moved, pointer, old < size ? old : size);
    free(pointer);
    return moved;
}
void *reallocarray(void *pointer, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) { errno = ENOMEM; return NULL; }
    return realloc(pointer, count * size);
}
