// Scanner.swift: the scan stage. Finds run directories under a MEM_DIR, reads `process`,
// `modules` and `status`, then streams the block files: readdir with d_type, names batched into
// flat byte buffers, batches parsed on all cores with openat/read/close into a reusable buffer,
// and counted into a dictionary keyed by group. Memory follows the number of groups, not blocks.

import Dispatch

/// A group: its key frames (from the Grouper) and the blocks' leak kind.
public struct GroupKey: Hashable, Sendable {
    public var frames: [UInt64]
    public var kind: LeakKind
    /// For an indirectly lost block, when LSan's suppressions are in use: the block whose clique
    /// took it (its leader); 0 otherwise. Report.suppress needs it, regroup drops it.
    public var leader: UInt64

    public init(frames: [UInt64], kind: LeakKind, leader: UInt64 = 0) {
        self.frames = frames
        self.kind = kind
        self.leader = leader
    }
}

/// Blocks counted under one group key.
public struct LeakAggregate: Sendable {
    public var key: GroupKey
    public var kind: LeakKind { key.kind }
    public var blocks: Int
    public var bytes: UInt64
    /// The earliest (smallest seq) block of the group.
    public var sample: BlockSample
}

/// What the scan stage found in one run directory.
public struct RunScan: Sendable {
    public var directory: String
    public var name: String
    public var process: ProcessRecord?
    public var status: StatusRecord?
    public var modules: ModuleMap
    /// The leak-check's verdicts (or why there are none), applied to every block.
    public var classification = Classification(checkSeq: nil, reason: nil)
    public var leaks: [LeakAggregate] = []
    public var badFrees: [BadFreeRecord] = []
    /// The first problems met (malformed or unsupported records); `problemCount` counts all.
    public var problems: [MemdirError] = []
    public var problemCount = 0
    /// Mappings and segments never given back (SharedMemory.swift).
    public var sharedMemory = SharedMemoryScan()
    /// With `splitByLeader`: the group key of every block that leads a clique.
    public var leaderKeys: [UInt64: GroupKey] = [:]
}

public enum Scanner {
    /// How many problems are kept with their text; the rest are only counted.
    public static let keptProblems = 20
    /// Names per batch handed to a worker: large enough to amortize dispatch, small enough to
    /// keep memory flat.
    static let batchSize = 4096

    static func isRecordName(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".mem") || name.hasSuffix(".free") || SharedMemory.isRecordName(name))
    }

    /// The most bytes each kind of record can have (the catalog's Record format, "Record files"); anything larger is
    /// malformed and is not read. The tracker writes a block line of at most ~800 bytes, a
    /// bad-free line of ~2,200, a process file of at most 80 KiB and a status of 5 KiB.
    public enum RecordLimit {
        public static let block = 4096
        public static let badFree = 8192
        public static let process = 128 * 1024
        public static let status = 16 * 1024
        public static let modules = 64 * 1024 * 1024
        /// Format 2's `stacks` file (a line per distinct stack, at most ~1.3 KB each) and
        /// `sources` file (a line per memtrack.h location, at most ~8 KB each).
        public static let stacks = 1024 * 1024 * 1024
        public static let sources = 64 * 1024 * 1024
    }

    /// The run directories under `path`, or `[path]` when it is a run directory itself.
    public static func runDirectories(in path: String) throws(MemdirError) -> [String] {
        // A run directory may hold a million block files: recognise it without listing it.
        if fileExists(join(path, "process")) || fileExists(join(path, "status")) {
            return [path]
        }
        let entries = try listDirectory(path)
        if entries.contains(where: { $0.kind != .directory && ($0.name == "process" || $0.name == "status" || isRecordName($0.name)) }) {
            return [path]
        }
        let subdirectories = entries.filter { $0.kind == .directory }.map { (name: $0.name, path: join(path, $0.name)) }
        var runs = subdirectories.filter { fileExists(join($0.path, "process")) || fileExists(join($0.path, "status")) }
        if runs.isEmpty {
            runs = subdirectories.filter { sub in
                ((try? listDirectory(sub.path)) ?? []).contains { isRecordName($0.name) }
            }
        }
        guard !runs.isEmpty else { throw .noRecords(path: path) }
        return runs.sorted { runOrder($0.name, $1.name) }.map(\.path)
    }

    /// "4242" < "4242.2" < "4242.10" < "4243"; non-numeric names sort as text after.
    static func runOrder(_ a: String, _ b: String) -> Bool {
        let na = a.split(separator: ".").map { Int($0) }, nb = b.split(separator: ".").map { Int($0) }
        if !na.contains(nil) && !nb.contains(nil) {
            let ia = na.map { $0! }, ib = nb.map { $0! }
            return ia.lexicographicallyPrecedes(ib)
        }
        return a < b
    }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    /// Scans one run directory. Problems with single records are collected, never thrown:
    /// the scan goes on and the report shows what parsed.
    /// splitByLeader: indirectly lost blocks are counted per clique leader too, and every
    /// leader's key is kept (LSan's suppressions, Report.suppress).
    public static func scan(runDirectory path: String, mode: GroupingMode, rules: WrapperRules, olderThanMs: UInt64? = nil,
                            leakCheckName: String = "leak-check", splitByLeader: Bool = false) -> RunScan {
        var problems: [MemdirError] = []
        func small<T>(_ name: String, limit: Int, _ parse: (String, String) throws(MemdirError) -> T) -> T? {
            let file = join(path, name)
            switch readTextFile(file, limit: limit) {
            case .failure(let code):
                problems.append(.malformedRecord(path: file, reason: code == Errno.noEntry ? "missing file" : errnoText(code).lowercasedFirst))
                return nil
            case .rejected(let reason):
                problems.append(.malformedRecord(path: file, reason: reason))
                return nil
            case .success(let text):
                do throws(MemdirError) { return try parse(text, file) } catch { problems.append(error); return nil }
            }
        }
        let process = small("process", limit: RecordLimit.process, RecordParser.parseProcess)
        let status = small("status", limit: RecordLimit.status, RecordParser.parseStatus)
        let modules = ModuleMap(small("modules", limit: RecordLimit.modules, RecordParser.parseModules) ?? [], rules: rules)
        var stacks = StackTable.empty  // format 2: the stacks and source locations its block records name
        do throws(MemdirError) { stacks = try StackTable.read(runDirectory: path) } catch { problems.append(error) }
        var scan = RunScan(directory: path, name: baseName(path), process: process, status: status, modules: modules)
        scan.classification = classification(runDirectory: path, name: leakCheckName, status: status, problems: &problems)
        scan.classification.splitByLeader = splitByLeader && scan.classification.lost.hasLeaders
        let accumulator = Accumulator()
        for p in problems { accumulator.problem(p) }
        var grouper = Grouper(mode: mode, modules: modules)
        if let age = olderThanMs { grouper.maxBlockMs = BlockAge.cutoff(olderThanMs: age, startUnixMs: process?.startUnixMs) }
        streamBlocks(path: path, grouper: grouper, classification: scan.classification, stacks: stacks,
                     into: accumulator, scan: &scan)
        scan.leaks = Array(accumulator.groups.values)
        scan.leaderKeys = accumulator.leaderKeys
        scan.problems = accumulator.problems
        scan.problemCount = accumulator.problemCount
        scan.badFrees.sort { $0.seq < $1.seq }
        return scan
    }

    /// Reads `leak-check`; a missing file is no problem (the reason comes from `status`), an
    /// unreadable or malformed one is, and leaves the blocks not classified.
    /// `name`: `leak-check` (at exit), or the answer of an on-demand check (`leak-check-SEQ`).
    static func classification(runDirectory path: String, name: String, status: StatusRecord?,
                               problems: inout [MemdirError]) -> Classification {
        let file = join(path, name)
        switch LeakCheckParser.read(file) {
        case .missing: return Classification.make(record: nil, status: status)
        case .unreadable(let error):
            problems.append(error)
            var c = Classification(checkSeq: nil, reason: "leak-check record unreadable")
            c.incomplete = c.reason
            return c
        case .malformed(let error):
            problems.append(error)
            var c = Classification(checkSeq: nil, reason: "leak-check record malformed")
            if case .unsupportedVersion(_, let v) = error { c.reason = "leak-check format version \(v) not supported" }
            c.incomplete = c.reason
            return c
        case .record(let record):
            return Classification.make(record: record, status: status)
        }
    }

    /// readdir the run directory; block files go to workers in batches, bad-free files are parsed here.
    static func streamBlocks(path: String, grouper: Grouper, classification: Classification, stacks: StackTable = .empty,
                             into accumulator: Accumulator, scan: inout RunScan) {
        let dir: DirectoryReader
        do throws(MemdirError) { dir = try DirectoryReader(path) } catch {
            accumulator.problem(error)
            return
        }
        // The workers read through the stream's descriptor: it stays open until they are done.
        defer { withExtendedLifetime(dir) {} }
        let fd = dir.descriptor
        let group = DispatchGroup()
        // At most this many batches in flight: both cores busy, memory bounded.
        let slots = DispatchSemaphore(value: 4)
        var batch = NameBatch()
        func flush() {
            guard batch.count > 0 else { return }
            let work = batch
            batch = NameBatch()
            slots.wait()
            DispatchQueue.global().async(group: group) {
                parseBatch(work, dirfd: fd, directory: path, grouper: grouper, classification: classification, stacks: stacks,
                           into: accumulator)
                slots.signal()
            }
        }
        while let entry = dir.next() {
            let type = entry.knownKind
            if type == .directory { continue }
            // '.' names are the tracker's temporary files (and "." and ".."): never records.
            if entry.firstByte == UInt8(ascii: ".") { continue }
            let isBlock = entry.withName { name -> Bool in
                let length = name.count
                guard length > 4, name[length - 4] == UInt8(ascii: "."), name[length - 3] == UInt8(ascii: "m"),
                      name[length - 2] == UInt8(ascii: "e"), name[length - 1] == UInt8(ascii: "m") else { return false }
                batch.append(name)
                return true
            }
            if isBlock {
                if type == nil && dir.kind(of: entry) == .directory { batch.removeLast() }
                if batch.count >= batchSize { flush() }
                continue
            }
            let name = entry.name
            if SharedMemory.isRecordName(name) {
                if let problem = SharedMemory.read(join(path, name), into: &scan.sharedMemory) { accumulator.problem(problem) }
                continue
            }
            guard name.hasSuffix(".free") else { continue }
            let file = join(path, name)
            switch readTextFile(file, limit: RecordLimit.badFree) {
            case .failure(Errno.loop): continue   // a symbolic link: not a v1 record, never followed
            case .failure(let code): accumulator.problem(.malformedRecord(path: file, reason: errnoText(code).lowercasedFirst))
            case .rejected(let reason): accumulator.problem(.malformedRecord(path: file, reason: reason))
            case .success(let text):
                do throws(MemdirError) { scan.badFrees.append(try RecordParser.parseBadFree(text, path: file)) }
                catch { accumulator.problem(error) }
            }
        }
        flush()
        group.wait()
    }

    static func parseBatch(_ batch: NameBatch, dirfd: Int32, directory: String, grouper: Grouper, classification: Classification,
                           stacks: StackTable = .empty, into accumulator: Accumulator) {
        var local: [GroupKey: LeakAggregate] = [:]
        var leaderKeys: [UInt64: GroupKey] = [:]
        var problems: [MemdirError] = []
        var problemCount = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: RecordLimit.block + 1, alignment: 16)
        defer { buffer.deallocate() }
        var stack: [UInt64] = []
        stack.reserveCapacity(64)
        batch.forEachName { name in
            func problem(_ error: MemdirError) {
                problemCount += 1
                if problems.count < keptProblems { problems.append(error) }
            }
            func filePath() -> String { join(directory, String(cString: name)) }
            // Format 2: a symlink, one readlinkat. Format 1: a regular file, opened without
            // following links or blocking, checked (fstat) and read whole within the limit.
            let parsed: BlockParseResult
            var filled = 0
            switch BlockRecordV2.readLink(dirfd: dirfd, name: name, into: buffer) {
            case .link(let length):
                parsed = BlockRecordV2.parse(buffer, length: length, name: name, stacks: stacks, stack: &stack, end: &filled)
            case .missing: return  // freed between readdir and now, not a leak
            case .failed(let code):
                problem(.malformedRecord(path: filePath(), reason: errnoText(code).lowercasedFirst))
                return
            case .notALink:
                // The buffer holds RecordLimit.block bytes and one more.
                switch readRecordFile(directory: dirfd, name: name, limit: RecordLimit.block, into: buffer) {
                case .refused(let refusal): problem(.malformedRecord(path: filePath(), reason: refusal)); return
                // Freed between readlinkat and open, not a leak; or it became a symbolic link
                // meanwhile (a new record at the address): never followed.
                case .gone: return
                case .failed(let code): problem(.malformedRecord(path: filePath(), reason: errnoText(code).lowercasedFirst)); return
                case .read(let count): filled = count
                }
                if filled > RecordLimit.block {   // it grew after the fstat
                    problem(.malformedRecord(path: filePath(), reason: "record too large (more than \(RecordLimit.block) bytes)"))
                    return
                }
                parsed = BlockParser.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]), stack: &stack)
            }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
            switch parsed {
            case .malformed(let reason): problem(.malformedRecord(path: filePath(), reason: reason))
            case .unsupportedVersion(let version): problem(.unsupportedVersion(path: filePath(), version: version))
            case .ok(let fields):
                if let limit = grouper.maxBlockMs, Int64(clamping: fields.ms) > limit { return }
                let frames = stack.withUnsafeBufferPointer { grouper.key($0, seq: fields.seq) }
                var key = GroupKey(frames: frames, kind: classification.kind(address: fields.address, seq: fields.seq))
                if classification.splitByLeader {
                    if key.kind == .indirectlyLost { key.leader = classification.lost.leader(of: fields.address) ?? 0 }
                    if classification.lost.leads(fields.address) { leaderKeys[fields.address] = key }
                }
                if var aggregate = local[key] {
                    aggregate.blocks += 1
                    aggregate.bytes &+= fields.size
                    if fields.seq < aggregate.sample.seq { aggregate.sample = sample(fields, bytes, stack) }
                    local[key] = aggregate
                } else {
                    local[key] = LeakAggregate(key: key, blocks: 1, bytes: fields.size, sample: sample(fields, bytes, stack))
                }
            }
        }
        accumulator.merge(local, problems: problems, problemCount: problemCount, leaderKeys: leaderKeys)
    }

    static func sample(_ f: BlockFields, _ bytes: UnsafeRawBufferPointer, _ stack: [UInt64]) -> BlockSample {
        BlockSample(address: f.address, size: f.size, seq: f.seq, thread: f.thread, ms: f.ms,
                    via: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[f.via]), as: UTF8.self), stack: stack,
                    source: f.source.isEmpty ? nil
                        : unescapeValue(Substring(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[f.source]), as: UTF8.self))),
                    family: f.family.isEmpty ? nil : String(decoding: UnsafeRawBufferPointer(rebasing: bytes[f.family]), as: UTF8.self))
    }
}

/// File names packed into one byte buffer, NUL-terminated, ready for openat.
struct NameBatch: @unchecked Sendable {
    var bytes: [CChar] = []
    var starts: [Int32] = []
    var count: Int { starts.count }

    init() { bytes.reserveCapacity(Scanner.batchSize * 24) }

    mutating func append(_ name: UnsafeBufferPointer<UInt8>) {
        starts.append(Int32(bytes.count))
        for b in name { bytes.append(CChar(bitPattern: b)) }
        bytes.append(0)
    }

    mutating func removeLast() {
        guard let last = starts.popLast() else { return }
        bytes.removeSubrange(Int(last)...)
    }

    func forEachName(_ body: (UnsafePointer<CChar>) -> Void) {
        bytes.withUnsafeBufferPointer { buf in
            for start in starts { body(buf.baseAddress! + Int(start)) }
        }
    }
}

/// The shared result of all workers, merged under a lock once per batch.
final class Accumulator: @unchecked Sendable {
    private let lock = Lock()
    var groups: [GroupKey: LeakAggregate] = [:]
    var leaderKeys: [UInt64: GroupKey] = [:]
    var problems: [MemdirError] = []
    var problemCount = 0

    func problem(_ error: MemdirError) {
        merge([:], problems: [error], problemCount: 1)
    }

    func merge(_ local: [GroupKey: LeakAggregate], problems newProblems: [MemdirError], problemCount count: Int,
               leaderKeys newLeaderKeys: [UInt64: GroupKey] = [:]) {
        lock.withLock { mergeLocked(local, problems: newProblems, problemCount: count, leaderKeys: newLeaderKeys) }
    }

    private func mergeLocked(_ local: [GroupKey: LeakAggregate], problems newProblems: [MemdirError], problemCount count: Int,
                             leaderKeys newLeaderKeys: [UInt64: GroupKey]) {
        leaderKeys.merge(newLeaderKeys) { first, _ in first }
        for (key, aggregate) in local {
            if var existing = groups[key] {
                existing.blocks += aggregate.blocks
                existing.bytes &+= aggregate.bytes
                if aggregate.sample.seq < existing.sample.seq { existing.sample = aggregate.sample }
                groups[key] = existing
            } else {
                groups[key] = aggregate
            }
        }
        problems.append(contentsOf: newProblems.prefix(max(0, Scanner.keptProblems - problems.count)))
        problemCount += count
    }
}
