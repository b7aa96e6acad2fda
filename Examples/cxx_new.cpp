// cxx_new.cpp: leaks through operator new, new[], a std::vector and a std::string.
#include <cstdio>
#include <string>
#include <vector>

struct Point {
    long x, y, z;
};

static void *volatile keep[8];

static void leak_everything()
{
    keep[0] = new Point{1, 2, 3};                         // LEAK: new 24
    keep[1] = new char[77];                               // LEAK: new[] 77
    keep[2] = new std::vector<int>(50, 7);                // LEAK: vector 24 + 200
    keep[3] = new std::string(100, 'x');                  // LEAK: string 32 + 101
}

int main()
{
    leak_everything();
    std::puts("cxx_new: 6 leaks");
    return 0;
}
