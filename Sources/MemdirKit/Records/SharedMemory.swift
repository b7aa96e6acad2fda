// SharedMemory.swift: mappings and shared-memory segments the program never gave back
// (the catalog's Record format, shared memory). Parses `0xADDR.map`, `shm-ID.shm` and `posix-NAME.shm` records,
// checks whether a segment still exists on the system now (/proc/sysvipc/shm, /dev/shm), and
// renders both kinds for the table and JSON reports. The scan, build and formatters call in here
// through one hook each.

/// `0xADDR.map`: a mapping still mapped when the process ended.
public struct MappingRecord: Equatable, Sendable {
    public var address: UInt64
    public var size: UInt64
    public var seq: UInt64
    public var thread: Int
    public var ms: Int
    /// mmap, mmap64, mremap or shmat.
    public var via: String
    /// anonymous, dev-zero or sysv.
    public var kind: String
    public var shared: Bool
    /// The SysV segment id, for kind sysv.
    public var segmentID: Int?
    public var stack: [UInt64]
    public var file: String
}

/// `shm-ID.shm` or `posix-NAME.shm`: a segment created and never removed.
public struct SegmentRecord: Equatable, Sendable {
    /// sysv or posix.
    public var kind: String
    public var id: Int?
    public var key: UInt64?
    public var size: UInt64?
    /// The POSIX name as given to shm_open.
    public var name: String?
    public var seq: UInt64
    public var thread: Int
    public var ms: Int
    public var via: String
    public var stack: [UInt64]
    public var file: String
    /// Whether the segment exists on the system when memdir looks; nil when it cannot tell.
    public var existsNow: Bool?
}

/// What one run directory holds besides blocks and bad frees.
public struct SharedMemoryScan: Sendable {
    public var mappings: [MappingRecord] = []
    public var segments: [SegmentRecord] = []
}

public struct MappingReport: Sendable {
    public var record: MappingRecord
    public var stack: [Frame]
    public var attributed = Attribution(frame: 0, symbol: 0)
    public var location: String { stack.isEmpty ? "(no stack)" : stack[attributed.frame].describe(symbol: attributed.symbol) }
}

public struct SegmentReport: Sendable {
    public var record: SegmentRecord
    public var stack: [Frame]
    public var attributed = Attribution(frame: 0, symbol: 0)
    public var location: String { stack.isEmpty ? "(no stack)" : stack[attributed.frame].describe(symbol: attributed.symbol) }
}

public enum SharedMemory {
    /// Record names of this kind; names starting with '.' are records being replaced.
    static func isRecordName(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".map") || name.hasSuffix(".shm"))
    }

    /// Scan hook: reads one record file into `scan`, or returns the problem.
    static func read(_ path: String, into scan: inout SharedMemoryScan) -> MemdirError? {
        switch readTextFile(path, limit: Scanner.RecordLimit.badFree) {
        case .failure(let code):
            return code == Errno.noEntry ? nil : .malformedRecord(path: path, reason: errnoText(code).lowercasedFirst)
        case .rejected(let why):
            return .malformedRecord(path: path, reason: why)
        case .success(let text):
            do throws(MemdirError) {
                if path.hasSuffix(".map") { scan.mappings.append(try parseMapping(text, path: path)) }
                else { scan.segments.append(try parseSegment(text, path: path)) }
                return nil
            } catch { return error }
        }
    }

    /// `key=value` fields after the header; `name=` (POSIX segments) runs to the end of the line.
    static func fields(_ text: String, kind: String, path: String) throws(MemdirError) -> [Substring: Substring] {
        if text.isEmpty { throw .malformedRecord(path: path, reason: "empty file") }
        _ = try checkedLines(text, kind: kind, path: path)
        var line = text.prefix { $0 != "\n" }.drop { $0 != " " }.dropFirst().drop { $0 != " " }.dropFirst()
        var result: [Substring: Substring] = [:]
        while !line.isEmpty {
            if line.hasPrefix("name=") { result["name"] = line.dropFirst(5); break }
            let token = line.prefix { $0 != " " }
            line = line.dropFirst(token.count).drop { $0 == " " }
            guard let eq = token.firstIndex(of: "=") else { throw .malformedRecord(path: path, reason: "bad field '\(token)'") }
            result[token[..<eq]] = token[token.index(after: eq)...]
        }
        return result
    }

    static func parseMapping(_ text: String, path: String) throws(MemdirError) -> MappingRecord {
        let f = try fields(text, kind: "mapping", path: path)
        func field(_ key: Substring) throws(MemdirError) -> Substring { try required(f[key], String(key), path) }
        guard let stack = StackParser.parse(try field("stack")) else { throw .malformedRecord(path: path, reason: "bad stack for 'stack'") }
        return MappingRecord(
            address: try number(try field("address"), key: "address", path: path),
            size: try number(try field("size"), key: "size", path: path),
            seq: try number(try field("seq"), key: "seq", path: path),
            thread: try number(try field("thread"), key: "thread", path: path),
            ms: try number(try field("ms"), key: "ms", path: path),
            via: String(try field("via")), kind: String(try field("kind")),
            shared: f["shared"] == "1",
            segmentID: try f["id"].map { v throws(MemdirError) in try number(v, key: "id", path: path) },
            stack: stack, file: path)
    }

    static func parseSegment(_ text: String, path: String) throws(MemdirError) -> SegmentRecord {
        let isPosix = text.hasPrefix("memtrack/1 posix-segment")
        let f = try fields(text, kind: isPosix ? "posix-segment" : "segment", path: path)
        func field(_ key: Substring) throws(MemdirError) -> Substring { try required(f[key], String(key), path) }
        guard let stack = StackParser.parse(try field("stack")) else { throw .malformedRecord(path: path, reason: "bad stack for 'stack'") }
        var record = SegmentRecord(
            kind: isPosix ? "posix" : "sysv",
            seq: try number(try field("seq"), key: "seq", path: path),
            thread: try number(try field("thread"), key: "thread", path: path),
            ms: try number(try field("ms"), key: "ms", path: path),
            via: String(try field("via")), stack: stack, file: path)
        if isPosix {
            record.name = unescapeValue(try field("name"))
        } else {
            record.id = try number(try field("id"), key: "id", path: path)
            record.key = try number(try field("key"), key: "key", path: path)
            record.size = try number(try field("size"), key: "size", path: path)
        }
        return record
    }

    // MARK: - Does it still exist?

    /// The SysV segments on the system now, by id, with their keys; nil when unreadable.
    static func systemSegments() -> [Int: UInt64]? {
        guard case .success(let text) = readTextFile("/proc/sysvipc/shm", limit: FileLimit.procFile) else { return nil }
        var result: [Int: UInt64] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: " ")
            guard columns.count > 1, let key = Int64(columns[0]), let id = Int(columns[1]) else { continue }
            result[id] = UInt64(UInt32(truncatingIfNeeded: key))
        }
        return result
    }

    /// Fills in `existsNow` for every segment: same id and key in /proc/sysvipc/shm, or the
    /// name under /dev/shm.
    static func checkExistence(_ scans: inout [RunScan]) {
        let needsSystem = scans.contains { $0.sharedMemory.segments.contains { $0.kind == "sysv" } }
        let system = needsSystem ? systemSegments() : nil
        for i in scans.indices {
            for j in scans[i].sharedMemory.segments.indices {
                let s = scans[i].sharedMemory.segments[j]
                if s.kind == "sysv" {
                    if let system, let id = s.id { scans[i].sharedMemory.segments[j].existsNow = system[id] == s.key }
                } else if let name = s.name {
                    let trimmed = name.drop { $0 == "/" }
                    scans[i].sharedMemory.segments[j].existsNow = !trimmed.isEmpty && !trimmed.contains("/")
                        && pathExists("/dev/shm/" + trimmed)
                }
            }
        }
    }

    // MARK: - Report

    static func reports(_ scan: SharedMemoryScan, frames: ([UInt64], UInt64) -> [Frame]) -> ([MappingReport], [SegmentReport]) {
        (scan.mappings.sorted { $0.seq < $1.seq }.map { MappingReport(record: $0, stack: frames($0.stack, $0.seq)) },
         scan.segments.sorted { $0.seq < $1.seq }.map { SegmentReport(record: $0, stack: frames($0.stack, $0.seq)) })
    }

    static func describe(_ s: SegmentRecord) -> String {
        if s.kind == "posix" { return "POSIX segment \(s.name ?? "?")" }
        let key = String(s.key ?? 0, radix: 16)
        return "SysV segment id \(s.id.map(String.init) ?? "?") key 0x\(String(repeating: "0", count: max(0, 8 - key.count)) + key)"
            + (s.size.map { ", \(countText($0)) bytes" } ?? "")
    }

    static func existence(_ s: SegmentRecord) -> String {
        switch s.existsNow {
        case true?: return "still exists"
        case false?: return "gone now"
        case nil: return "existence unknown"
        }
    }

    /// The table report's lines for one process (empty when it has no findings).
    static func formatTable(_ p: ProcessReport, resolved: Bool, stack: ([Frame], Attribution) -> String) -> String {
        var out = ""
        if !p.mappings.isEmpty {
            let bytes = p.mappings.reduce(UInt64(0)) { $0 + $1.record.size }
            out += "  mappings still mapped at exit: \(countText(p.mappings.count)), \(countText(bytes)) bytes\n"
            for m in p.mappings {
                let r = m.record
                let what = "\(r.kind)\(r.shared ? " shared" : " private")" + (r.segmentID.map { " id \($0)" } ?? "")
                out += "    \(countText(r.size)) bytes at \(hex(r.address)) (\(r.via), \(what)) at \(m.location)\n"
                if resolved { out += stack(m.stack, m.attributed) }
            }
        }
        if !p.segments.isEmpty {
            out += "  segments outliving the process: \(countText(p.segments.count))\n"
            for s in p.segments {
                out += "    \(describe(s.record)) (\(s.record.via)) at \(s.location); \(existence(s.record))\n"
                if resolved { out += stack(s.stack, s.attributed) }
            }
        }
        return out
    }

    static func json(_ p: ProcessReport, stack: ([Frame]) -> JSONValue) -> [(String, JSONValue)] {
        func opt(_ v: Int?) -> JSONValue { v.map { .number(Int64($0)) } ?? .null }
        return [
            ("mappings", .array(p.mappings.map { m in
                let r = m.record
                return .object([
                    ("address", .string(hex(r.address))), ("size", .unsigned(r.size)), ("seq", .unsigned(r.seq)),
                    ("thread", .number(Int64(r.thread))), ("ms", .number(Int64(r.ms))), ("via", .string(r.via)),
                    ("kind", .string(r.kind)), ("shared", .bool(r.shared)), ("segment_id", opt(r.segmentID)),
                    ("file", .string(r.file)), ("location", .string(m.location)), ("stack", stack(m.stack)),
                ])
            })),
            ("segments", .array(p.segments.map { s in
                let r = s.record
                return .object([
                    ("kind", .string(r.kind)), ("id", opt(r.id)), ("key", r.key.map { .string(hex($0)) } ?? .null),
                    ("size", r.size.map { .unsigned($0) } ?? .null), ("name", r.name.map { .string($0) } ?? .null),
                    ("seq", .unsigned(r.seq)), ("thread", .number(Int64(r.thread))), ("ms", .number(Int64(r.ms))),
                    ("via", .string(r.via)), ("file", .string(r.file)),
                    ("exists_now", r.existsNow.map { .bool($0) } ?? .null),
                    ("location", .string(s.location)), ("stack", stack(s.stack)),
                ])
            })),
        ]
    }
}
