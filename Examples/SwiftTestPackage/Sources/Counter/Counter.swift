// The code under test: a counter, and a node type a test can tie into a cycle.

public struct Counter {
    public private(set) var value = 0
    public init() {}
    public mutating func increment(by step: Int = 1) { value += step }
}

public final class Node {
    public var next: Node?
    public let label: String
    public init(_ label: String) { self.label = label }
}
