// LeakCheck.swift: the parse and classify stages for leak kinds. Reads a run directory's
// `leak-check` record (the catalog's Record format, "leak-check"), written by the tracker at a normal exit,
// and turns it into a per-process lookup (`Classification`) the block scan asks for every block:
// definitely / indirectly / possibly lost, still reachable, or not classified (and why).

/// What a block is at the end of the process, in valgrind memcheck's words.
public enum LeakKind: Int, CaseIterable, Comparable, Sendable {
    case definitelyLost, indirectlyLost, possiblyLost, stillReachable
    /// No classification applies: the process ended without a check, or the block is newer.
    case notClassified

    public static func < (a: LeakKind, b: LeakKind) -> Bool { a.rawValue < b.rawValue }

    /// The JSON name: `definitely_lost` ...
    public var jsonName: String {
        switch self {
        case .definitelyLost: "definitely_lost"
        case .indirectlyLost: "indirectly_lost"
        case .possiblyLost: "possibly_lost"
        case .stillReachable: "still_reachable"
        case .notClassified: "not_classified"
        }
    }

    /// valgrind's words: `definitely lost` ...
    public var words: String { jsonName.replacingUnderscores }

    /// valgrind's `--show-leak-kinds` / `match-leak-kinds` value; nil for notClassified.
    public var valgrindName: String? {
        switch self {
        case .definitelyLost: "definite"
        case .indirectlyLost: "indirect"
        case .possiblyLost: "possible"
        case .stillReachable: "reachable"
        case .notClassified: nil
        }
    }

    public var isLost: Bool { self < .stillReachable }

    /// The four kinds a leak check decides.
    public static let classified: [LeakKind] = [.definitelyLost, .indirectlyLost, .possiblyLost, .stillReachable]

    /// Parses valgrind's kind list: `definite,indirect`, `all`, `none`. Nil when a word is unknown.
    public static func parseSet(_ text: String) -> Set<LeakKind>? {
        var result: Set<LeakKind> = []
        for word in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch word {
            case "all": result.formUnion(classified)
            case "none": break
            default:
                guard let kind = classified.first(where: { $0.valgrindName == String(word) }) else { return nil }
                result.insert(kind)
            }
        }
        return result
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}

/// The blocks a leak check found lost, as a sorted array: 9 bytes a block, looked up by binary
/// search from every scanning thread (a million-block heap may list a million).
public struct LostBlocks: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    private var addresses: [UInt64] = []
    private var kinds: [LeakKind] = []
    /// (indirectly lost block, the block whose clique took it), from `leader` lines, sorted by
    /// block once the record is in; empty for records written before leaders were.
    private var leaderPairs: [LeaderPair] = []
    private struct LeaderPair: Equatable, Sendable { var block, leader: UInt64 }
    /// Every block that leads another, sorted (for LSan's suppressions: see Report.suppress).
    private var leading: [UInt64] = []
    private var sorted = true

    public init() {}
    public init(dictionaryLiteral elements: (UInt64, LeakKind)...) {
        for (a, k) in elements { append(a, k) }
        finish()
    }

    public var count: Int { addresses.count }

    /// Every lost block, in address order.
    public func forEach(_ body: (UInt64, LeakKind) -> Void) {
        for i in addresses.indices { body(addresses[i], kinds[i]) }
    }

    mutating func append(_ address: UInt64, _ kind: LeakKind) {
        if let last = addresses.last, last >= address { sorted = false }
        addresses.append(address)
        kinds.append(kind)
    }

    mutating func appendLeader(of block: UInt64, _ leader: UInt64) {
        leaderPairs.append(LeaderPair(block: block, leader: leader))
    }

    /// Sorts by address once all lines are in (the tracker writes them in any order). Returns
    /// the first block a `leader` line names that is not listed as indirectly lost, if any.
    @discardableResult
    mutating func finish() -> UInt64? {
        if !sorted {
            let order = addresses.indices.sorted { addresses[$0] < addresses[$1] }
            addresses = order.map { addresses[$0] }
            kinds = order.map { kinds[$0] }
            sorted = true
        }
        leaderPairs.sort { $0.block < $1.block }
        leading = Array(Set(leaderPairs.lazy.map(\.leader))).sorted()
        return leaderPairs.first { self[$0.block] != .indirectlyLost }?.block
    }

    private func index(_ address: UInt64, in array: [UInt64]) -> Int? {
        var lo = 0, hi = array.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if array[mid] < address { lo = mid + 1 } else { hi = mid }
        }
        return lo < array.count && array[lo] == address ? lo : nil
    }

    public subscript(address: UInt64) -> LeakKind? {
        index(address, in: addresses).map { kinds[$0] }
    }

    /// Whether the record names clique leaders at all.
    public var hasLeaders: Bool { !leaderPairs.isEmpty }

    /// The block whose clique took this indirectly lost block; nil when none is named.
    public func leader(of address: UInt64) -> UInt64? {
        var lo = 0, hi = leaderPairs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if leaderPairs[mid].block < address { lo = mid + 1 } else { hi = mid }
        }
        return lo < leaderPairs.count && leaderPairs[lo].block == address ? leaderPairs[lo].leader : nil
    }

    /// Whether some indirectly lost block names this one as its leader.
    public func leads(_ address: UInt64) -> Bool { index(address, in: leading) != nil }
}

/// The `leak-check` file as written by the tracker.
public struct LeakCheckRecord: Equatable, Sendable {
    public enum Outcome: Equatable, Sendable {
        case complete
        case skipped(String)
        case failed(String)
    }

    public var result: Outcome = .complete
    public var when: String?
    /// The tracker's sequence number when the check began; newer blocks are not classified.
    public var seq: UInt64 = 0
    public var ms: UInt64?
    public var durationUs: UInt64?
    public var threads: Int?
    public var threadsScanned: Int?
    public var blocks: UInt64?
    public var notes: [String] = []
    /// Every block that is not still reachable.
    public var lost = LostBlocks()
    /// Whether the `end` line was there.
    public var ended = false
}

public enum LeakCheckParser {
    /// A leak-check lists at most one line per live block, about 32 bytes each (`lost
    /// 0x55d0c0a2b2a0 definitely`): 1 GiB is far beyond any real heap's record (30 million lost
    /// blocks). The file is streamed: memory is 9 bytes per lost block, never the file's size.
    public static let maximumSize = 1 << 30
    /// The longest line the tracker writes: a `note` or `result` reason of at most a few hundred
    /// bytes; a longer one (a sparse file of zeros is one endless line) is refused at once.
    public static let maximumLine = 16 * 1024

    public static func parse(_ bytes: [UInt8], path: String) throws(MemdirError) -> LeakCheckRecord {
        if bytes.isEmpty { throw .malformedRecord(path: path, reason: "empty file") }
        var builder = Builder(path: path)
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            guard try builder.line(bytes[start..<end], terminated: end < bytes.count) else { break }
            start = end + 1
        }
        return try builder.finish()
    }

    /// What reading a record file gave.
    public enum ReadResult {
        case record(LeakCheckRecord)
        /// No such file.
        case missing
        /// Not a regular file, too large, or a read error: nothing was parsed.
        case unreadable(MemdirError)
        /// Read, and did not parse (or another format version).
        case malformed(MemdirError)
    }

    /// Reads and parses a record file, streamed line by line.
    public static func read(_ path: String) -> ReadResult {
        var builder = Builder(path: path)
        var empty = true
        do throws(MemdirError) {
            let outcome = try forEachLine(path, limit: maximumSize, maxLine: maximumLine) { (line, terminated) throws(MemdirError) -> Bool in
                empty = false
                return try builder.line(ArraySlice(line), terminated: terminated)
            }
            switch outcome {
            case .failure(Errno.noEntry): return .missing
            case .failure(let code): return .unreadable(.malformedRecord(path: path, reason: errnoText(code).lowercasedFirst))
            case .rejected(let why): return .unreadable(.malformedRecord(path: path, reason: why))
            case .done: break
            }
            if empty { throw .malformedRecord(path: path, reason: "empty file") }
            return .record(try builder.finish())
        } catch {
            return .malformed(error)
        }
    }

    /// The record, line by line.
    struct Builder {
        let path: String
        var record = LeakCheckRecord()
        var seqSeen = false
        var lineNumber = 0

        /// Takes one line (without its newline); false once nothing more is to be read.
        mutating func line(_ line: ArraySlice<UInt8>, terminated: Bool) throws(MemdirError) -> Bool {
            defer { lineNumber += 1 }
            if lineNumber == 0 {
                try checkHeader(line, path: path)
                return true
            }
            if !terminated { return false }  // a last line without newline is cut short: no `end`
            if line.isEmpty { return true }
            let start = line.startIndex
            // The common line, one per lost block, parsed without making strings.
            if line.starts(with: LeakCheckParser.lostPrefix), let gap = line[(start + 5)...].firstIndex(of: UInt8(ascii: " ")),
               let address = BlockParser.number(line[(start + 5)..<gap]) {
                let word = line[(gap + 1)...]
                if let kind = LeakCheckParser.kindWords.first(where: { word.elementsEqual($0.0) })?.1 {
                    record.lost.append(address, kind)
                    return true
                }
            }
            let space = line.firstIndex(of: UInt8(ascii: " ")) ?? line.endIndex
            let key = String(decoding: line[line.startIndex..<space], as: UTF8.self)
            let value = line[min(space + 1, line.endIndex)..<line.endIndex]
            let number = lineNumber + 1
            let path = self.path
            func bad(_ what: String) -> MemdirError {
                .malformedRecord(path: path, reason: "line \(number): \(what)")
            }
            func numberValue() throws(MemdirError) -> UInt64 {
                guard let n = BlockParser.number(value) else { throw bad("bad number for '\(key.printable.prefix(40))'") }
                return n
            }
            func count() throws(MemdirError) -> Int {
                guard let n = Int(exactly: try numberValue()) else { throw bad("number out of range for '\(key)'") }
                return n
            }
            switch key {
            case "lost":
                // Well-formed lines were taken above: this one has a bad address or kind.
                guard let gap = value.firstIndex(of: UInt8(ascii: " ")),
                      BlockParser.number(value[value.startIndex..<gap]) != nil else { throw bad("bad lost line") }
                throw bad("unknown leak kind '\(String(decoding: value[(gap + 1)...].prefix(40), as: UTF8.self))'")
            case "leader":   // `leader BLOCK LEADER`: the indirectly lost BLOCK's clique leader
                guard let gap = value.firstIndex(of: UInt8(ascii: " ")),
                      let block = BlockParser.number(value[value.startIndex..<gap]),
                      let leader = BlockParser.number(value[(gap + 1)...]), leader != 0 else { throw bad("bad leader line") }
                record.lost.appendLeader(of: block, leader)
            case "result":
                let text = String(decoding: value, as: UTF8.self)
                let (word, reason) = keyValue(Substring(text))
                switch word {
                case "complete": record.result = .complete
                case "skipped": record.result = .skipped(unescapeValue(reason))
                case "failed": record.result = .failed(unescapeValue(reason))
                default: throw bad("unknown result '\(word.prefix(40))'")
                }
            case "when": record.when = String(decoding: value, as: UTF8.self)
            case "seq": record.seq = try numberValue(); seqSeen = true
            case "ms": record.ms = try numberValue()
            case "duration-us": record.durationUs = try numberValue()
            case "threads": record.threads = try count()
            case "threads-scanned": record.threadsScanned = try count()
            case "blocks": record.blocks = try numberValue()
            case "note": record.notes.append(unescapeValue(Substring(String(decoding: value, as: UTF8.self))))
            case "end": record.ended = true
            default: break  // unknown keys are ignored
            }
            return !record.ended
        }

        mutating func finish() throws(MemdirError) -> LeakCheckRecord {
            if record.ended && record.result == .complete && !seqSeen {
                throw .malformedRecord(path: path, reason: "missing field 'seq'")
            }
            if let block = record.lost.finish() {
                throw .malformedRecord(path: path, reason: "a leader line names \(hex(block)), which is not indirectly lost")
            }
            return record
        }
    }

    static let lostPrefix = Array("lost ".utf8)
    static let kindWords: [([UInt8], LeakKind)] = [
        (Array("definitely".utf8), .definitelyLost), (Array("indirectly".utf8), .indirectlyLost), (Array("possibly".utf8), .possiblyLost),
    ]

    static func checkHeader(_ line: ArraySlice<UInt8>, path: String) throws(MemdirError) {
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("memtrack/") else { throw .malformedRecord(path: path, reason: "missing memtrack header") }
        let rest = text.dropFirst("memtrack/".count)
        let version = rest.prefix { $0 != " " }
        guard version == supportedRecordVersion else { throw .unsupportedVersion(path: path, version: String(version.prefix(40))) }
        let kind = rest.dropFirst(version.count).drop { $0 == " " }
        guard kind == "leak-check" else {
            throw .malformedRecord(path: path, reason: "expected a leak-check record, found '\(kind.prefix(40))'")
        }
    }

}

/// The classify stage's lookup for one process: which kind a block has, or why it has none.
public struct Classification: Sendable {
    /// Blocks with a seq above this are not classified; nil when nothing is.
    public var checkSeq: UInt64?
    public var lost: LostBlocks
    /// Why no block of the process is classified (nil when the check is usable).
    public var reason: String?
    /// The check's own notes (threads not stopped...).
    public var notes: [String]
    /// Why the record is incomplete, when the leak-check record should be there and whole and
    /// is not: missing after a normal exit (it could not be written), cut short, unreadable,
    /// malformed, or a check that failed. nil when complete or legitimately absent (a crash,
    /// exec, `_exit`, `MEM_LEAK_CHECK=0`, a process still running).
    public var incomplete: String?

    /// Count indirectly lost blocks per clique leader too (Scanner.scan's splitByLeader).
    public var splitByLeader = false

    public static let afterCheckReason = "allocated after the leak check"

    public init(checkSeq: UInt64?, lost: LostBlocks = [:], reason: String?, notes: [String] = []) {
        self.checkSeq = checkSeq
        self.lost = lost
        self.reason = reason
        self.notes = notes
    }

    @inline(__always)
    public func kind(address: UInt64, seq: UInt64) -> LeakKind {
        guard let checkSeq, seq <= checkSeq else { return .notClassified }
        return lost[address] ?? .stillReachable
    }

    /// From the parsed record, or from how the process ended when there is none.
    public static func make(record: LeakCheckRecord?, status: StatusRecord?) -> Classification {
        guard let record else {
            var c = Classification(checkSeq: nil, reason: missingReason(status))
            // At a normal exit the tracker always writes one (`result skipped _exit` after
            // _exit, `skipped disabled` with MEM_LEAK_CHECK=0): none means it could not.
            if status?.state == "exit" { c.incomplete = "no leak-check record after a normal exit" }
            return c
        }
        switch record.result {
        case .skipped(let why): return Classification(checkSeq: nil, reason: "leak check skipped: \(why)", notes: record.notes)
        case .failed(let why):
            var c = Classification(checkSeq: nil, reason: "leak check failed: \(why)", notes: record.notes)
            c.incomplete = "leak check failed: \(why)"
            return c
        case .complete:
            guard record.ended else {
                var c = Classification(checkSeq: nil, reason: "leak-check record incomplete (no end line)", notes: record.notes)
                c.incomplete = "leak-check record cut short (no end line)"
                return c
            }
            return Classification(checkSeq: record.seq, lost: record.lost, reason: nil, notes: record.notes)
        }
    }

    /// Why a process has no leak-check file, inferred from `status`.
    public static func missingReason(_ status: StatusRecord?) -> String {
        guard let status else { return "no leak-check record and no status record" }
        switch status.state {
        case "signal": return "killed by " + (status.signalName ?? "signal \(status.signal.map(String.init) ?? "?")")
        case "exec": return "replaced by exec" + (status.execPath.map { " of \($0)" } ?? "")
        case "running": return "still running or killed (e.g. SIGKILL)"
        case "exit": return "no leak-check record (it could not be written)"
        default: return "no leak-check record (state \(status.state))"
        }
    }
}

extension BlockParser {
    /// `number` over a byte slice.
    static func number(_ slice: ArraySlice<UInt8>) -> UInt64? {
        slice.withUnsafeBytes { number($0, 0, $0.count) }
    }
}
