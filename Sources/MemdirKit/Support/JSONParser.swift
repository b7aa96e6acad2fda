// JSONParser.swift: reads back the JSON memdir writes (snapshots): a small strict parser into
// JSONValue. Integers only (memdir writes no fractions); objects keep their key order.

public enum JSONParser {
    public struct Failure: Error { public var message: String }

    public static func parse(_ text: String) throws(Failure) -> JSONValue {
        var p = Cursor(bytes: Array(text.utf8))
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw Failure(message: "trailing text at byte \(p.i)") }
        return v
    }

    /// Arrays and objects nested deeper than this are refused: the parser recurses, and a file
    /// of a million `[` must not overflow the stack. memdir writes at most 6 levels.
    public static let maximumDepth = 64

    struct Cursor {
        var bytes: [UInt8]
        var i = 0
        var depth = 0

        mutating func skipSpace() {
            while i < bytes.count {
                switch bytes[i] {
                case 32, 9, 10, 13: i += 1
                default: return
                }
            }
        }

        mutating func expect(_ c: UInt8) throws(Failure) {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else { throw Failure(message: "expected '\(Character(UnicodeScalar(c)))' at byte \(i)") }
            i += 1
        }

        mutating func literal(_ word: String, _ v: JSONValue) throws(Failure) -> JSONValue {
            let w = word.utf8
            guard i + w.count <= bytes.count, bytes[i..<i + w.count].elementsEqual(w) else { throw Failure(message: "bad literal at byte \(i)") }
            i += w.count
            return v
        }

        mutating func value() throws(Failure) -> JSONValue {
            skipSpace()
            guard i < bytes.count else { throw Failure(message: "unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < JSONParser.maximumDepth else { throw Failure(message: "nested deeper than \(JSONParser.maximumDepth) at byte \(i)") }
                depth += 1
                defer { depth -= 1 }
                return bytes[i] == UInt8(ascii: "{") ? try object() : try array()
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                let start = i
                if bytes[i] == UInt8(ascii: "-") { i += 1 }
                while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { i += 1 }
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                if let n = Int64(text) { return .number(n) }
                if let u = UInt64(text) { return .unsigned(u) }
                throw Failure(message: "bad number at byte \(start)")
            }
        }

        mutating func object() throws(Failure) -> JSONValue {
            i += 1
            var pairs: [(String, JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipSpace()
                let key = try string()
                try expect(UInt8(ascii: ":"))
                pairs.append((key, try value()))
                skipSpace()
                guard i < bytes.count else { throw Failure(message: "unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .object(pairs)
            }
        }

        mutating func array() throws(Failure) -> JSONValue {
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw Failure(message: "unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]"))
                return .array(items)
            }
        }

        mutating func string() throws(Failure) -> String {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw Failure(message: "expected a string at byte \(i)") }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < bytes.count else { break }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                        throw Failure(message: "bad escape at byte \(i)")
                    }
                    i += 4
                    out.append(contentsOf: Array(String(UnicodeScalar(code).map(Character.init) ?? "?").utf8))
                default: out.append(e)
                }
            }
            throw Failure(message: "unterminated string")
        }
    }
}

extension JSONValue {
    public subscript(_ key: String) -> JSONValue? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int64? {
        switch self {
        case .number(let n): n
        case .unsigned(let u): Int64(exactly: u)
        default: nil
        }
    }
    /// A whole number that is not negative.
    public var unsignedValue: UInt64? {
        switch self {
        case .number(let n): UInt64(exactly: n)
        case .unsigned(let u): u
        default: nil
        }
    }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
}
