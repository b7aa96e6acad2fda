// unwind_o2_cxx.cpp: C++ allocations a frame-pointer walk cannot follow, built with -O2 (and -g)
// by the aarch64 tests. The string's characters are allocated inside libstdc++ (append's
// _M_append and _M_mutate are instantiated in the library, not here):
//   32 bytes  new std::string: make_text <- main
//   61 bytes  its characters: (libstdc++'s append) <- make_text <- main
#include <string>

static std::string *volatile keep;

static __attribute__((noinline)) std::string *make_text(const char *text)
{
    std::string *made = new std::string();               // CHAIN: make_text new
    made->append(text);                                  // CHAIN: make_text append
    return made;
}

static const char sixty[] = "0123456789012345678901234567890123456789012345678901234567890";

int main()
{
    keep = make_text(sixty + 1);                         // CHAIN: main make_text
    return keep->size() == 60 ? 0 : 2;
}
