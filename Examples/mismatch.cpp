// mismatch.cpp: the six mismatched allocation/deallocation pairs valgrind reports, the three
// matched pairs it does not, a sized delete given the wrong size, and a bad_alloc that must
// still reach the program's catch through the tracker's operator new.
#include <cstdio>
#include <cstdlib>
#include <new>

struct Small {
    long a, b;
};

struct Base {
    long a;
};
struct Derived : Base {
    long more[7];
};

// The pointers go through a volatile global so that the compiler cannot see the mismatches
// (g++ warns about, or folds, some of them when it can).
static void *volatile slot;

static void *pass(void *pointer)
{
    slot = pointer;
    return slot;
}

int main()
{
    // Matched: none of these is reported.
    std::free(pass(std::malloc(10)));                      // MATCHED: malloc free
    delete static_cast<Small *>(pass(new Small));           // MATCHED: new delete
    delete[] static_cast<char *>(pass(new char[20]));       // MATCHED: new[] delete[]

    // Mismatched: each is reported once, at the deallocation's line.
    delete static_cast<Small *>(pass(std::malloc(16)));     // MISMATCH: malloc then delete,
    delete[] static_cast<char *>(pass(std::malloc(17)));    // MISMATCH: malloc then delete[]
    delete static_cast<char *>(pass(new char[18]));         // MISMATCH: new[] then delete,
    std::free(pass(new char[19]));                          // MISMATCH: new[] then free
    delete[] static_cast<char *>(pass(new char));           // MISMATCH: new then delete[]
    std::free(pass(new Small));                             // MISMATCH: new then free

    // A sized delete of a Derived through a Base* without a virtual destructor: the size
    // operator delete receives is Base's (8), not the 64 bytes allocated.
    Base *base = static_cast<Base *>(pass(new Derived));    // ALLOC: sized
    ::operator delete(base, sizeof(Base));                  // MISMATCH: sized

    try {
        void *huge = ::operator new(static_cast<std::size_t>(-1) / 2);
        std::printf("unexpected: %p\n", huge);
        return 1;
    } catch (const std::bad_alloc &) {
        std::puts("mismatch: bad_alloc caught");
    }
    return 0;
}
