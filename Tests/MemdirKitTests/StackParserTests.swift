// StackParserTests.swift: the one stack parser (Records/StackParser.swift): what a stack value
// is, what is not, and that every record kind that carries a stack reads the same frames.

import Testing
@testable import MemdirKit

@Suite("Stack parser")
struct StackParserTests {
    @Test("frames are comma-separated numbers, 0x hex or decimal, innermost first; empty is no frames")
    func frames() {
        #expect(StackParser.parse("") == [])
        #expect(StackParser.parse("0x401136,0x7f3a2c02a1ca") == [0x401136, 0x7f3a2c02a1ca])
        #expect(StackParser.parse("12,0x10,0XfF") == [12, 16, 255])
        #expect(StackParser.parse("0xffffffffffffffff") == [UInt64.max])
    }

    @Test("an empty item, a bare 0x, a non-digit or a value over 64 bits is not a stack")
    func notStacks() {
        for bad in ["0x10,", ",0x10", "0x10,,0x20", "0x", "0xzz", "1 2", "-1", "+1", "18446744073709551616", "0x10000000000000000"] {
            #expect(StackParser.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("bytes: the bad item's range comes back and the frames before it are taken out again")
    func badItemRange() {
        let text = Array("0x10,16,0x20".utf8)
        var stack: [UInt64] = [7]
        let bad = text.withUnsafeBytes { StackParser.parse($0, 0, text.count, hexOnly: true, into: &stack) }
        #expect(bad == 5..<7)   // "16": the stacks file writes every frame in hex
        #expect(stack == [7])
        let good = text.withUnsafeBytes { StackParser.parse($0, 0, text.count, into: &stack) }
        #expect(good == nil)
        #expect(stack == [7, 0x10, 16, 0x20])
    }

    @Test("a block record, a bad free and the stacks file read the same stack the same way")
    func everyRecordKind() throws {
        let value = "0x55d0c0a011e9,0x7f5c7a029d90,0x55d0c0a01105"
        let frames: [UInt64] = [0x55d0c0a011e9, 0x7f5c7a029d90, 0x55d0c0a01105]

        let block = Array("memtrack/1 block address=0x10 size=40 seq=17 thread=4242 ms=12 via=malloc stack=\(value)\n".utf8)
        var blockStack: [UInt64] = []
        let parsed = block.withUnsafeBytes { BlockParser.parse($0, stack: &blockStack) }
        guard case .ok = parsed else { Issue.record("block record did not parse: \(parsed)"); return }
        #expect(blockStack == frames)

        let badFree = try RecordParser.parseBadFree(
            "memtrack/1 double-free address=0x10 seq=23 thread=7 ms=14 via=free stack=\(value) alloc-stack=\(value) free-stack=\(value)\n", path: "f")
        #expect(badFree.stack == frames)
        #expect(badFree.allocStack == frames)
        #expect(badFree.freeStack == frames)

        let table = try StackTable.parse("memtrack/2 stacks\n1 \(value)\n", path: "s")
        #expect(table.stack(1).map(Array.init) == frames)

        // The same bad value is refused by each, naming the field or the frame.
        let badBlock = Array("memtrack/1 block address=0x10 size=40 seq=17 thread=4242 ms=12 via=malloc stack=0x1,zz\n".utf8)
        var scratch: [UInt64] = []
        #expect(badBlock.withUnsafeBytes { BlockParser.parse($0, stack: &scratch) } == .malformed("bad value '0x1,zz' for 'stack'"))
        #expect(throws: MemdirError.malformedRecord(path: "f", reason: "bad stack for 'stack'")) {
            try RecordParser.parseBadFree("memtrack/1 double-free address=0x10 seq=23 thread=7 ms=14 via=free stack=0x1,zz\n", path: "f")
        }
        #expect(throws: MemdirError.malformedRecord(path: "s", reason: "bad frame 'zz' in stack 1")) {
            try StackTable.parse("memtrack/2 stacks\n1 0x1,zz\n", path: "s")
        }
    }
}
