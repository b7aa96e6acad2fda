// Snapshot.swift: the grouped live set of a directory at one moment (`memdir snapshot`), what
// `diff`, `watch` and the HTML report compare over time. Saved as JSON, schema
// "memdir-snapshot/1" (the catalog's Long-running programs). Groups are keyed by their unresolved location (module+offset),
// which stays the same for the life of a process, so two snapshots of one process line up.

public struct SnapshotFrame: Equatable, Sendable {
    public var address: UInt64
    public var module: String?
    public var offset: UInt64?
}

public struct SnapshotGroup: Sendable {
    /// What groups line up on across snapshots: the attributed frame's module+offset
    /// (`--by stack`: every frame's, joined by `;`).
    public var key: String
    public var blocks: Int
    public var bytes: UInt64
    /// The group's earliest block: when (ms since the process started) and its seq.
    public var oldestMs: UInt64
    public var oldestSeq: UInt64
    /// The earliest block's stack, innermost first, and which frame the group is attributed to.
    public var stack: [SnapshotFrame]
    public var attributedFrame: Int
}

public struct SnapshotProcess: Sendable {
    public var runDirectory: String
    public var name: String
    public var pid: Int?
    public var exe: String?
    public var startUnixMs: Int?
    public var state: String?
    public var counters: Counters?
    /// Sorted by bytes, largest first.
    public var groups: [SnapshotGroup]

    public var liveBlocks: Int { groups.reduce(0) { $0.addingReportingOverflow($1.blocks).overflow ? .max : $0 + $1.blocks } }
    public var liveBytes: UInt64 { groups.reduce(0) { $0 &+ $1.bytes } }
}

public struct Snapshot: Sendable {
    public static let schema = "memdir-snapshot/1"
    /// The latest time a snapshot may carry (2^50 ms: year 37,000); later, or negative, is malformed.
    public static let latestUnixMs: Int64 = 1 << 50
    public var directory: String
    public var takenUnixMs: Int
    public var grouping: GroupingMode
    public var processes: [SnapshotProcess]
    /// Problems met while reading the records (as in the report), not saved.
    public var problems: Report?

    /// Reads `directory` now (a MEM_DIR or one run directory), unresolved: as fast as `list`.
    public static func take(directory: String, grouping: GroupingMode, rules: WrapperRules = WrapperRules()) throws(MemdirError) -> Snapshot {
        let taken = BlockAge.nowUnixMs()
        let report = try ReportPipeline(ReportOptions(grouping: grouping, rules: rules)).report(directory)
        let processes = report.processes.map { p in
            SnapshotProcess(
                runDirectory: p.directory, name: p.name, pid: p.process?.pid, exe: p.process?.exe,
                startUnixMs: p.process?.startUnixMs, state: p.status?.state,
                counters: try? CountersReader.read(runDirectory: p.directory),
                groups: p.leaks.map { g in
                    SnapshotGroup(key: key(g, grouping: grouping), blocks: g.blocks, bytes: g.bytes,
                                  oldestMs: g.sample.ms, oldestSeq: g.sample.seq,
                                  stack: g.stack.map { SnapshotFrame(address: $0.address, module: $0.module, offset: $0.offset) },
                                  attributedFrame: g.attributed.frame)
                })
        }
        return Snapshot(directory: directory, takenUnixMs: taken, grouping: grouping, processes: processes, problems: report)
    }

    static func key(_ g: LeakGroup, grouping: GroupingMode) -> String {
        if g.stack.isEmpty { return "(no stack)" }
        if grouping == .stack { return g.stack.map(\.moduleLocation).joined(separator: ";") }
        return g.stack[g.attributed.frame].moduleLocation
    }

    // ---- JSON ----------------------------------------------------------------------------

    public func json() -> String {
        func frame(_ f: SnapshotFrame) -> JSONValue {
            .object([("address", .string(hex(f.address))), ("module", f.module.map { .string($0) } ?? .null),
                     ("offset", f.offset.map { .string(hex($0)) } ?? .null)])
        }
        func counters(_ c: Counters?) -> JSONValue {
            guard let c else { return .null }
            return .object([("heap_current", .number(c.heapCurrent)), ("heap_peak", .number(c.heapPeak)),
                            ("live_blocks", .number(c.liveBlocks)), ("allocations", .unsigned(c.allocations)),
                            ("bytes_requested", .unsigned(c.bytesRequested))])
        }
        return JSONValue.object([
            ("schema", .string(Self.schema)),
            ("directory", .string(directory)),
            ("taken_unix_ms", .number(Int64(takenUnixMs))),
            ("grouping", .string(grouping.rawValue)),
            ("processes", .array(processes.map { p in
                .object([
                    ("run_directory", .string(p.runDirectory)), ("name", .string(p.name)),
                    ("pid", p.pid.map { .number(Int64($0)) } ?? .null), ("exe", p.exe.map { .string($0) } ?? .null),
                    ("start_unix_ms", p.startUnixMs.map { .number(Int64($0)) } ?? .null),
                    ("state", p.state.map { .string($0) } ?? .null),
                    ("live_blocks", .number(Int64(p.liveBlocks))), ("live_bytes", .unsigned(p.liveBytes)),
                    ("counters", counters(p.counters)),
                    ("groups", .array(p.groups.map { g in
                        .object([("key", .string(g.key)), ("blocks", .number(Int64(g.blocks))), ("bytes", .unsigned(g.bytes)),
                                 ("oldest_ms", .unsigned(g.oldestMs)), ("oldest_seq", .unsigned(g.oldestSeq)),
                                 ("attributed_frame", .number(Int64(g.attributedFrame))),
                                 ("stack", .array(g.stack.map(frame)))])
                    })),
                ])
            })),
        ]).render() + "\n"
    }

    /// Reads a saved snapshot; `path` names it in errors (status 5 malformed, 6 other schema).
    public static func load(path: String) throws(MemdirError) -> Snapshot {
        let text: String
        switch readTextFile(path, limit: FileLimit.jsonFile, followLinks: true) {
        case .failure(let code): throw .directoryUnreadable(path: path, reason: errnoText(code))
        case .rejected(let why): throw .malformedRecord(path: path, reason: why)
        case .success(let t): text = t
        }
        let root: JSONValue
        do throws(JSONParser.Failure) { root = try JSONParser.parse(text) } catch {
            throw .malformedRecord(path: path, reason: "not a snapshot: \(error.message)")
        }
        guard let schema = root["schema"]?.stringValue else { throw .malformedRecord(path: path, reason: "not a snapshot: no schema") }
        guard schema == Self.schema else { throw .unsupportedVersion(path: path, version: schema) }
        func bad(_ what: String) -> MemdirError { .malformedRecord(path: path, reason: "snapshot field \(what) missing or invalid") }
        // Times and counts are checked to lie in their range (a time between 1970 and year
        // 37,000, counts not negative) so that no difference or sum of them can overflow.
        func time(_ v: JSONValue?) -> Int? { v?.intValue.flatMap { (0...Self.latestUnixMs).contains($0) ? Int($0) : nil } }
        func count(_ v: JSONValue?) -> Int64? { v?.intValue.flatMap { $0 >= 0 ? $0 : nil } }
        guard let taken = time(root["taken_unix_ms"]), let groupingName = root["grouping"]?.stringValue,
              let grouping = GroupingMode(rawValue: groupingName), let list = root["processes"]?.arrayValue else { throw bad("taken_unix_ms/grouping/processes") }
        var processes: [SnapshotProcess] = []
        for p in list {
            guard let run = p["run_directory"]?.stringValue, let groups = p["groups"]?.arrayValue else { throw bad("run_directory/groups") }
            var parsed: [SnapshotGroup] = []
            for g in groups {
                guard let key = g["key"]?.stringValue, let blocks = count(g["blocks"]), let bytes = g["bytes"]?.unsignedValue else { throw bad("key/blocks/bytes") }
                let stack = (g["stack"]?.arrayValue ?? []).map { f in
                    SnapshotFrame(address: f["address"]?.stringValue.flatMap(parseNumber) ?? 0, module: f["module"]?.stringValue,
                                  offset: f["offset"]?.stringValue.flatMap(parseNumber))
                }
                let attributed = g["attributed_frame"]?.intValue ?? 0
                guard attributed >= 0, stack.isEmpty ? attributed == 0 : attributed < Int64(stack.count) else { throw bad("attributed_frame") }
                parsed.append(SnapshotGroup(key: key, blocks: Int(blocks), bytes: bytes,
                                            oldestMs: g["oldest_ms"]?.unsignedValue ?? 0, oldestSeq: g["oldest_seq"]?.unsignedValue ?? 0,
                                            stack: stack, attributedFrame: Int(attributed)))
            }
            var counters: Counters?
            if let c = p["counters"], let current = c["heap_current"]?.intValue {
                counters = Counters(calls: Array(repeating: 0, count: counterEntryPoints.count), bytesRequested: c["bytes_requested"]?.unsignedValue ?? 0,
                                    heapCurrent: current, liveBlocks: c["live_blocks"]?.intValue ?? 0,
                                    heapPeak: c["heap_peak"]?.intValue ?? current, peakTolerance: 0, histogram: [], threads: 0)
            }
            processes.append(SnapshotProcess(runDirectory: run, name: p["name"]?.stringValue ?? baseName(run),
                                             pid: p["pid"]?.intValue.map { Int($0) }, exe: p["exe"]?.stringValue,
                                             startUnixMs: time(p["start_unix_ms"]),
                                             state: p["state"]?.stringValue, counters: counters, groups: parsed))
        }
        return Snapshot(directory: root["directory"]?.stringValue ?? path, takenUnixMs: Int(taken), grouping: grouping, processes: processes)
    }

    /// A saved snapshot file, or a directory read now with `grouping`.
    public static func open(_ path: String, grouping: GroupingMode, rules: WrapperRules) throws(MemdirError) -> Snapshot {
        isDirectory(path) ? try take(directory: path, grouping: grouping, rules: rules) : try load(path: path)
    }
}
