// BlockParser.swift: parses one block file (`memtrack/1 block address=... stack=...\n`) straight
// from the bytes read into a reusable buffer: no String per record, the stack decoded into a
// caller-owned array. This is the hot loop of `memdir list` over a million records.

/// The fields of one block record. `via` is a byte range into the buffer that was parsed.
public struct BlockFields: Equatable {
    public var address: UInt64 = 0
    public var size: UInt64 = 0
    public var seq: UInt64 = 0
    public var thread: UInt64 = 0
    public var ms: UInt64 = 0
    public var via: Range<Int> = 0..<0
    /// The optional `src=` value (memtrack.h's location), escaped; empty when absent.
    public var source: Range<Int> = 0..<0
    /// The optional `family=` value (`new`, `new[]`); empty when absent (malloc's).
    public var family: Range<Int> = 0..<0
}

public enum BlockParseResult: Equatable {
    case ok(BlockFields)
    case malformed(String)
    case unsupportedVersion(String)
}

/// One leaked block kept as the example of its group.
public struct BlockSample: Equatable, Sendable {
    public var address: UInt64
    public var size: UInt64
    public var seq: UInt64
    public var thread: UInt64
    public var ms: UInt64
    public var via: String
    public var stack: [UInt64]
    /// `FILE:LINE:FUNCTION` noted by memtrack.h (NotedSource.swift); nil when absent.
    public var source: String? = nil
    /// `new` or `new[]` for a block of operator new or new[]; nil for malloc's family.
    public var family: String? = nil
}

public enum BlockParser {
    private static let magic = Array("memtrack/".utf8)
    private static let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n")

    /// Parses `buffer` (the whole file). On success `stack` holds the frames, innermost first.
    public static func parse(_ buffer: UnsafeRawBufferPointer, stack: inout [UInt64]) -> BlockParseResult {
        let n = buffer.count
        stack.removeAll(keepingCapacity: true)
        if n == 0 { return .malformed("empty file") }
        guard n >= magic.count, magic.indices.allSatisfy({ buffer[$0] == magic[$0] }) else {
            return .malformed("missing memtrack header")
        }
        var i = magic.count
        let versionStart = i
        while i < n && buffer[i] != space && buffer[i] != newline { i += 1 }
        if !(i - versionStart == 1 && buffer[versionStart] == UInt8(ascii: "1")) {
            return .unsupportedVersion(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[versionStart..<i]), as: UTF8.self))
        }
        guard buffer[n - 1] == newline else { return .malformed("truncated (no newline at end)") }
        var lineEnd = i
        while buffer[lineEnd] != newline { lineEnd += 1 }  // terminates: buffer[n-1] is a newline
        while i < lineEnd && buffer[i] == space { i += 1 }
        let kindStart = i
        while i < lineEnd && buffer[i] != space { i += 1 }
        guard matches(buffer, kindStart, i, "block") else {
            return .malformed("expected a block record, found '\(text(buffer, kindStart, i))'")
        }

        var fields = BlockFields()
        var seen: UInt8 = 0  // bit per required field
        while i < lineEnd {
            while i < lineEnd && buffer[i] == space { i += 1 }
            if i >= lineEnd { break }
            let keyStart = i
            if lineEnd - i >= 4 && matches(buffer, i, i + 4, "src=") {  // optional, runs to the end of the line
                fields.source = (i + 4)..<lineEnd
                break
            }
            while i < lineEnd && buffer[i] != UInt8(ascii: "=") && buffer[i] != space { i += 1 }
            guard i < lineEnd && buffer[i] == UInt8(ascii: "=") else {
                return .malformed("bad field '\(text(buffer, keyStart, i))'")
            }
            let keyEnd = i
            i += 1
            let valueStart = i
            while i < lineEnd && buffer[i] != space { i += 1 }
            let valueEnd = i
            let keyLength = keyEnd - keyStart
            func num(_ bit: UInt8, _ name: StaticString) -> UInt64? {
                seen |= bit
                return number(buffer, valueStart, valueEnd)
            }
            var bad: StaticString? = nil
            switch keyLength {
            case 2 where matches(buffer, keyStart, keyEnd, "ms"):
                if let v = num(1 << 0, "ms") { fields.ms = v } else { bad = "ms" }
            case 3 where matches(buffer, keyStart, keyEnd, "seq"):
                if let v = num(1 << 1, "seq") { fields.seq = v } else { bad = "seq" }
            case 3 where matches(buffer, keyStart, keyEnd, "via"):
                seen |= 1 << 2
                fields.via = valueStart..<valueEnd
                if valueStart == valueEnd { bad = "via" }
            case 4 where matches(buffer, keyStart, keyEnd, "size"):
                if let v = num(1 << 3, "size") { fields.size = v } else { bad = "size" }
            case 5 where matches(buffer, keyStart, keyEnd, "stack"):
                seen |= 1 << 4
                if StackParser.parse(buffer, valueStart, valueEnd, into: &stack) != nil { bad = "stack" }
            case 6 where matches(buffer, keyStart, keyEnd, "family"):
                fields.family = valueStart..<valueEnd
            case 6 where matches(buffer, keyStart, keyEnd, "thread"):
                if let v = num(1 << 5, "thread") { fields.thread = v } else { bad = "thread" }
            case 7 where matches(buffer, keyStart, keyEnd, "address"):
                if let v = num(1 << 6, "address") { fields.address = v } else { bad = "address" }
            default: break  // unknown keys are ignored
            }
            if let bad {
                return .malformed("bad value '\(text(buffer, valueStart, valueEnd))' for '\(bad)'")
            }
        }
        if seen != 0x7F {
            let names = ["ms", "seq", "via", "size", "stack", "thread", "address"]
            let missing = names.indices.filter { seen & (1 << $0) == 0 }.map { names[$0] }
            return .malformed("missing field '\(missing[0])'")
        }
        return .ok(fields)
    }

    static func matches(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
        guard end - start == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        for k in 0..<(end - start) where b[start + k] != l[k] { return false }
        return true
    }

    static func text(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<min(end, start + 80)]), as: UTF8.self)
    }

    /// Decimal, or hexadecimal after `0x`. Nil when empty, not a number, or over 64 bits.
    static func number(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt64? {
        var i = start
        var radix: UInt64 = 10
        if end - start > 2 && b[i] == UInt8(ascii: "0") && (b[i + 1] == UInt8(ascii: "x") || b[i + 1] == UInt8(ascii: "X")) {
            radix = 16; i += 2
        }
        if i >= end { return nil }
        var value: UInt64 = 0
        while i < end {
            let c = b[i]
            let digit: UInt64
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: digit = UInt64(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: digit = UInt64(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (s, o2) = m.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = s
            i += 1
        }
        return value
    }

}
