// Tests that leak nothing: memdir run on the xctest binary must pass with only XCTest's own
// blocks suppressed (and, with --testing-library swift-testing, Swift Testing's).
import XCTest
import Testing
@testable import Counter

final class CleanTests: XCTestCase {
    // A stored property set by the initializer: held by the test case object XCTest keeps.
    let start = Node("start")

    func testIncrement() {
        var c = Counter()
        c.increment()
        XCTAssertEqual(c.value, 1)
    }

    func testNodesReleased() {
        let a = Node("a"), b = Node("b")
        a.next = b
        XCTAssertEqual(a.next?.label, "b")
        XCTAssertEqual(start.label, "start")
    }
}

final class AsyncTests: XCTestCase {
    func testAsyncIncrement() async {
        var c = Counter()
        c.increment(by: 2)
        XCTAssertEqual(c.value, 2)
    }
}

@Test func incrementTwice() {
    var c = Counter()
    c.increment()
    c.increment()
    #expect(c.value == 2)
}
