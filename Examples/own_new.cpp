// own_new.cpp: replaces operator new only, as C++ allows, and keeps the library's operator
// delete. Its blocks reach malloc from its own new: no deallocation may be reported as
// mismatched, and the leak is still found.
#include <cstdio>
#include <cstdlib>
#include <new>

void *operator new(std::size_t size)
{
    void *block = std::malloc(size);
    if (!block) throw std::bad_alloc();
    return block;
}

static int *volatile keep;

int main()
{
    int *one = new int(3);
    delete one;
    char *many = new char[5];
    delete[] many;
    keep = new int(4);                    // LEAK: own new
    std::puts("own_new: done");
    return 0;
}
