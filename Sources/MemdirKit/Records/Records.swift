// Records.swift: the parse stage for the small files of a run directory (`process`, `modules`,
// `status`, `bad-SEQ.free`), following the catalog's Record format (version 1). Block files, which
// can number millions, are parsed from bytes in BlockParser.swift.

/// The only record format version this reader understands.
public let supportedRecordVersion = "1"

/// `process`: who the process was.
public struct ProcessRecord: Equatable, Sendable {
    public var pid: Int
    public var ppid: Int?
    /// Run directory name of the parent's record, present only after fork.
    public var parent: String?
    public var exe: String
    public var args: [String] = []
    public var startUnixMs: Int?
    public var settleMs: Int?
    public var depth: Int?
}

/// `status`: how the process ended and what the tracker could not record.
public struct StatusRecord: Equatable, Sendable {
    public var state: String
    public var code: Int?
    public var signal: Int?
    public var signalName: String?
    public var execPath: String?
    public var unrecordedBlocks: Int = 0
    public var unremovedRecords: Int = 0
    public var unrecordedEvents: Int = 0
    public var error: String?

    public var isComplete: Bool { unrecordedBlocks == 0 && unremovedRecords == 0 && unrecordedEvents == 0 }

    /// "exit 0", "signal 11 SIGSEGV", "exec /bin/ls", "running".
    public var summary: String {
        switch state {
        case "exit": return "exit \(code.map(String.init) ?? "?")"
        case "signal": return "signal \(signal.map(String.init) ?? "?")" + (signalName.map { " \($0)" } ?? "")
        case "exec": return "exec" + (execPath.map { " \($0)" } ?? "")
        default: return state
        }
    }
}

/// One `module` line of `modules`: one executable segment of a loaded module.
public struct ModuleLine: Equatable, Sendable {
    public var seq: UInt64
    public var base: UInt64
    public var start: UInt64
    public var end: UInt64
    public var path: String
    /// The module's GNU build-id as hex, when the tracker recorded one.
    public var buildID: String? = nil
}

/// A bad free: `double-free`, `invalid-free`, `mismatched-free` or `mismatched-size`.
public struct BadFreeRecord: Equatable, Sendable {
    public var kind: String
    public var address: UInt64
    public var seq: UInt64
    public var thread: Int
    public var ms: Int
    public var via: String
    public var stack: [UInt64]
    public var size: UInt64?
    public var allocStack: [UInt64]?
    public var freeStack: [UInt64]?
    /// The mismatches: the family that allocated the block (`malloc`, `new`, `new[]`).
    public var family: String?
    /// `mismatched-size`: the size the sized delete was given.
    public var freedSize: UInt64?
    /// The file it came from.
    public var file: String
}

// MARK: - Value syntax

/// Numbers are decimal unless they start with `0x`.
func parseNumber<S: StringProtocol>(_ text: S) -> UInt64? {
    if text.hasPrefix("0x") || text.hasPrefix("0X") {
        let digits = text.dropFirst(2)
        return digits.isEmpty ? nil : UInt64(digits, radix: 16)
    }
    return UInt64(text)
}

/// Undoes the escaping of values that run to the end of the line: `\\` `\n` `\t` `\xHH`.
public func unescapeValue(_ text: Substring) -> String {
    guard text.contains("\\") else { return String(text) }
    var bytes: [UInt8] = []
    let utf8 = Array(text.utf8)
    var i = 0
    while i < utf8.count {
        let b = utf8[i]
        if b == UInt8(ascii: "\\"), i + 1 < utf8.count {
            switch utf8[i + 1] {
            case UInt8(ascii: "\\"): bytes.append(b); i += 2; continue
            case UInt8(ascii: "n"): bytes.append(10); i += 2; continue
            case UInt8(ascii: "t"): bytes.append(9); i += 2; continue
            case UInt8(ascii: "x") where i + 3 < utf8.count:
                if let v = UInt8(String(decoding: utf8[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                    bytes.append(v); i += 4; continue
                }
            default: break
            }
        }
        bytes.append(b)
        i += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Checks the `memtrack/N KIND` header line and returns the lines after it.
/// The file must end with a newline: a missing one means the write was cut short.
func checkedLines(_ text: String, kind: String, path: String) throws(MemdirError) -> [Substring] {
    if text.isEmpty { throw .malformedRecord(path: path, reason: "empty file") }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let header = lines[0]
    guard header.hasPrefix("memtrack/") else {
        throw .malformedRecord(path: path, reason: "missing memtrack header")
    }
    let rest = header.dropFirst("memtrack/".count)
    let version = rest.prefix { $0 != " " }
    guard version == supportedRecordVersion else {
        throw .unsupportedVersion(path: path, version: String(version))
    }
    let headerKind = rest.dropFirst(version.count).drop { $0 == " " }.prefix { $0 != " " }
    guard headerKind == kind else {
        throw .malformedRecord(path: path, reason: "expected a \(kind) record, found '\(headerKind)'")
    }
    guard text.hasSuffix("\n") else {
        throw .malformedRecord(path: path, reason: "truncated (no newline at end)")
    }
    return Array(lines.dropFirst().dropLast())
}

/// Splits `key value-to-end-of-line`.
func keyValue(_ line: Substring) -> (Substring, Substring) {
    guard let space = line.firstIndex(of: " ") else { return (line, "") }
    return (line[..<space], line[line.index(after: space)...])
}

func required<T>(_ value: T?, _ key: String, _ path: String) throws(MemdirError) -> T {
    guard let value else { throw .malformedRecord(path: path, reason: "missing field '\(key)'") }
    return value
}

func number<T: FixedWidthInteger>(_ value: Substring, key: Substring, path: String) throws(MemdirError) -> T {
    guard let n = parseNumber(value), let v = T(exactly: n) else {
        throw .malformedRecord(path: path, reason: "bad number '\(value)' for '\(key)'")
    }
    return v
}

// MARK: - Parsers

public enum RecordParser {
    public static func parseProcess(_ text: String, path: String) throws(MemdirError) -> ProcessRecord {
        var pid: Int?, exe: String?
        var info = ProcessRecord(pid: 0, exe: "")
        for line in try checkedLines(text, kind: "process", path: path) where !line.isEmpty {
            let (key, value) = keyValue(line)
            switch key {
            case "pid": pid = try number(value, key: key, path: path)
            case "ppid": info.ppid = try number(value, key: key, path: path)
            case "parent": info.parent = unescapeValue(value)
            case "exe": exe = unescapeValue(value)
            case "arg": info.args.append(unescapeValue(value))
            case "start-unix-ms": info.startUnixMs = try number(value, key: key, path: path)
            case "settle-ms": info.settleMs = try number(value, key: key, path: path)
            case "depth": info.depth = try number(value, key: key, path: path)
            default: break  // unknown keys are ignored
            }
        }
        info.pid = try required(pid, "pid", path)
        info.exe = try required(exe, "exe", path)
        return info
    }

    public static func parseStatus(_ text: String, path: String) throws(MemdirError) -> StatusRecord {
        var state: String?
        var info = StatusRecord(state: "")
        for line in try checkedLines(text, kind: "status", path: path) where !line.isEmpty {
            let (key, value) = keyValue(line)
            switch key {
            case "state": state = String(value)
            case "code": info.code = try number(value, key: key, path: path)
            case "signal": info.signal = try number(value, key: key, path: path)
            case "signal-name": info.signalName = String(value)
            case "exec-path": info.execPath = unescapeValue(value)
            case "unrecorded-blocks": info.unrecordedBlocks = try number(value, key: key, path: path)
            case "unremoved-records": info.unremovedRecords = try number(value, key: key, path: path)
            case "unrecorded-events": info.unrecordedEvents = try number(value, key: key, path: path)
            case "error": info.error = unescapeValue(value)
            default: break
            }
        }
        info.state = try required(state, "state", path)
        return info
    }

    public static func parseModules(_ text: String, path: String) throws(MemdirError) -> [ModuleLine] {
        var result: [ModuleLine] = []
        for line in try checkedLines(text, kind: "modules", path: path) where !line.isEmpty {
            let (key, rest) = keyValue(line)
            guard key == "module" else { continue }
            var seq: UInt64?, base: UInt64?, start: UInt64?, end: UInt64?, modulePath: String?, buildID: String?
            var remaining = rest
            while !remaining.isEmpty {
                if remaining.hasPrefix("path=") {  // runs to the end of the line
                    modulePath = unescapeValue(remaining.dropFirst(5))
                    break
                }
                let token = remaining.prefix { $0 != " " }
                remaining = remaining.dropFirst(token.count).drop { $0 == " " }
                guard let eq = token.firstIndex(of: "=") else {
                    throw .malformedRecord(path: path, reason: "bad field '\(token)'")
                }
                let k = token[..<eq], v = token[token.index(after: eq)...]
                switch k {
                case "seq": seq = try number(v, key: k, path: path)
                case "base": base = try number(v, key: k, path: path)
                case "start": start = try number(v, key: k, path: path)
                case "end": end = try number(v, key: k, path: path)
                case "build-id": buildID = v.allSatisfy(\.isHexDigit) && !v.isEmpty && v.count <= 128 ? v.lowercased() : nil
                default: break
                }
            }
            result.append(ModuleLine(
                seq: try required(seq, "seq", path), base: try required(base, "base", path),
                start: try required(start, "start", path), end: try required(end, "end", path),
                path: try required(modulePath, "path", path), buildID: buildID))
        }
        return result
    }

    public static func parseBadFree(_ text: String, path: String) throws(MemdirError) -> BadFreeRecord {
        if text.isEmpty { throw .malformedRecord(path: path, reason: "empty file") }
        // The header's kind is the event kind: memtrack/1 double-free ...
        let headerKind = text.dropFirst("memtrack/".count).drop { $0 != " " }.dropFirst().prefix { $0 != " " && $0 != "\n" }
        let kinds = ["invalid-free", "mismatched-free", "mismatched-size"]
        let expected = kinds.first { $0 == headerKind } ?? "double-free"
        _ = try checkedLines(text, kind: expected, path: path)
        let line = text.prefix { $0 != "\n" }
        var fields: [Substring: Substring] = [:]
        for token in line.split(separator: " ").dropFirst(2) {
            guard let eq = token.firstIndex(of: "=") else {
                throw .malformedRecord(path: path, reason: "bad field '\(token)'")
            }
            fields[token[..<eq]] = token[token.index(after: eq)...]
        }
        func field(_ key: Substring) throws(MemdirError) -> Substring { try required(fields[key], String(key), path) }
        func stack(_ key: Substring, _ v: Substring) throws(MemdirError) -> [UInt64] {
            guard let s = StackParser.parse(v) else { throw .malformedRecord(path: path, reason: "bad stack for '\(key)'") }
            return s
        }
        var record = BadFreeRecord(
            kind: expected,
            address: try number(try field("address"), key: "address", path: path),
            seq: try number(try field("seq"), key: "seq", path: path),
            thread: try number(try field("thread"), key: "thread", path: path),
            ms: try number(try field("ms"), key: "ms", path: path),
            via: String(try field("via")),
            stack: try stack("stack", try field("stack")),
            file: path)
        if let v = fields["size"] { record.size = try number(v, key: "size", path: path) }
        if let v = fields["alloc-stack"] { record.allocStack = try stack("alloc-stack", v) }
        if let v = fields["free-stack"] { record.freeStack = try stack("free-stack", v) }
        if let v = fields["family"] { record.family = String(v) }
        if let v = fields["freed-size"] { record.freedSize = try number(v, key: "freed-size", path: path) }
        return record
    }
}
