/* loader.c: where the dynamic loader's code lies, so that the blocks it allocates for the
 * program (link maps in dlopen, thread-local storage in pthread_create), and those a library's
 * constructor allocates inside dlopen, get the deepest stack.
 *
 * The loader's own frames run 12 to 16 deep between malloc and the program's dlopen call;
 * MEM_DEPTH's default of 12 would stop inside the loader, and memdir could then only name a
 * loader function. Such blocks are few, so they cost nothing that matters.
 *
 * Layer: index.
 */
#include "loader.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

uintptr_t memtrack_loader_start, memtrack_loader_size;
atomic_int memtrack_loader_known;

/* getauxval and reading the loader's own program headers: no allocation, no lock. */
void memtrack_loader_find(void) {
    uintptr_t base = (uintptr_t)getauxval(AT_BASE);
    if (base) {
        const ElfW(Ehdr) *header = (const ElfW(Ehdr) *)base;
        const ElfW(Phdr) *segments = (const ElfW(Phdr) *)(base + header->e_phoff);
        for (int i = 0; i < header->e_phnum; i++) {
            if (segments[i].p_type != PT_LOAD || !(segments[i].p_flags & PF_X)) continue;
            memtrack_loader_start = base + segments[i].p_vaddr;
            memtrack_loader_size = segments[i].p_memsz;
            break;
        }
    }
    atomic_store_explicit(&memtrack_loader_known, 1, memory_order_release);
}
