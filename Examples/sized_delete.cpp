// sized_delete.cpp: many C++ objects deleted with their size (C++14 sized deallocation) after
// most of them have moved to the tracker's backlog; each delete is checked against the size the
// object was allocated with. usage: sized_delete [OBJECTS]
#include <cstdio>
#include <cstdlib>
#include <vector>

struct Node { long value[5]; };

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 50000;
    std::vector<Node *> nodes;
    nodes.reserve((size_t)n);
    for (int i = 0; i < n; i++) nodes.push_back(new Node{{i}});
    long sum = 0;
    for (Node *p : nodes) { sum += p->value[0]; delete p; }   // operator delete(void *, 40)
    printf("%ld\n", sum);
    return 0;
}
