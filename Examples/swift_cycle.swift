// swift_cycle.swift: two objects that hold each other strongly; when makeCycle returns, nothing
// else refers to them, so ARC never frees either: a retain cycle, two leaked blocks.

final class Parent {
    var child: Child?
    var payload: (Int, Int, Int, Int, Int) = (1, 2, 3, 4, 5)
}

final class Child {
    var parent: Parent?
    var payload: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
}

@inline(never)
func makeCycle() {
    let parent = Parent() // LEAK: Parent
    let child = Child() // LEAK: Child
    parent.child = child
    child.parent = parent
}

makeCycle()
print("swift_cycle: 1 cycle")
