// A test that leaks a retain cycle: two nodes referencing each other. Run alone
// (`CounterPackageTests.xctest CounterTests.CycleTests`), memdir must fail with both lines.
import XCTest
@testable import Counter

final class CycleTests: XCTestCase {
    func testCycle() {
        let first = Node("first")     // LEAK: first node
        let second = Node("second")   // LEAK: second node
        first.next = second
        second.next = first
        XCTAssertEqual(first.next?.next?.label, "first")
    }
}
