// leak_kinds.cpp: one structure per leak kind (valgrind's definitions), each block's address
// printed as "expect ADDRESS KIND" so a test can compare with the tracker's leak-check record.
// KIND is definitely, indirectly, possibly or reachable.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>

struct node { node *left, *right; long payload[2]; };

static void expect(const void *block, const char *kind) { printf("expect %p %s\n", block, kind); }

static node *make(node *left, node *right) {
    node *n = (node *)malloc(sizeof(node));
    n->left = left; n->right = right; n->payload[0] = n->payload[1] = 0;
    return n;
}

// Roots: globals only (and what they reach).
node *reachable_tree;
char *interior_only;
void *length64_inner, *stdstring_inner, *newarray_inner, *inheritance_inner;

// Multiple inheritance: a C seen through its second base points 8 bytes into the block.
struct First { virtual ~First() {} virtual int first() { return 1; } long a = 0; };
struct Second { virtual ~Second() {} virtual int second() { return 2; } long b = 0; };
struct Both : First, Second { ~Both() override {} };
// new[] of a type with a destructor: the block starts with the element count.
struct Counted { ~Counted() { value = 0; } long value = 1; long more = 2; };

__attribute__((noinline)) static void build(void) {
    // A tree under a global: all still reachable.
    node *leaf = make(nullptr, nullptr);
    reachable_tree = make(make(leaf, nullptr), make(nullptr, nullptr));
    expect(reachable_tree, "reachable"); expect(reachable_tree->left, "reachable");
    expect(reachable_tree->right, "reachable"); expect(leaf, "reachable");

    // A lost tree: its root is definitely lost, everything under it indirectly.
    node *lost_leaf = make(nullptr, nullptr);
    node *lost_root = make(make(lost_leaf, nullptr), make(nullptr, nullptr));
    expect(lost_root, "definitely"); expect(lost_root->left, "indirectly");
    expect(lost_root->right, "indirectly"); expect(lost_leaf, "indirectly");

    // A lost cycle: the lower address leads the clique (definitely), the other joins it.
    node *a = make(nullptr, nullptr), *b = make(a, nullptr);
    a->left = b;
    expect(a < b ? a : b, "definitely"); expect(a < b ? b : a, "indirectly");

    // A chain through lost blocks: head -> middle -> tail.
    node *tail = make(nullptr, nullptr), *middle = make(tail, nullptr), *head = make(middle, nullptr);
    expect(head, "definitely"); expect(middle, "indirectly"); expect(tail, "indirectly");

    // Only an interior pointer (16 bytes in, no heuristic applies): possibly lost, and what it
    // points to by its start is possibly lost too (reached from a possibly-lost block).
    char *block = (char *)calloc(1, 64);
    void *behind = malloc(24);
    memcpy(block, &behind, sizeof behind);
    interior_only = block + 16;
    expect(block, "possibly"); expect(behind, "possibly");

    // Heuristics (valgrind's --leak-check-heuristics=all): still reachable.
    uint64_t *length64 = (uint64_t *)malloc(8 + 40);   // length64: first word = size - 8
    length64[0] = 40;
    length64_inner = length64 + 1;
    expect(length64, "reachable");

    const uint64_t capacity = 31;                       // stdstring: length capacity refcount chars \0
    uint64_t *cow = (uint64_t *)malloc(3 * 8 + capacity + 1);
    cow[0] = 5; cow[1] = capacity; cow[2] = 0;
    memcpy(cow + 3, "hello", 6);
    stdstring_inner = cow + 3;
    expect(cow, "reachable");

    Counted *array = new Counted[3];                    // newarray: the count precedes the elements
    newarray_inner = array;
    expect((char *)array - sizeof(size_t), "reachable");

    Both *both = new Both;                              // multipleinheritance
    Second *second = both;
    inheritance_inner = second;
    expect(both, "reachable");
    if ((void *)second == (void *)both) { fprintf(stderr, "unexpected layout\n"); exit(2); }
}

int main(void) {
    build();
    return 0;
}
