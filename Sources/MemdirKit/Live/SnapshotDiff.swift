// SnapshotDiff.swift: what changed between two snapshots of the same processes: per process
// and per group, blocks and bytes before and after, sorted by growth. Processes line up by run
// directory name, groups by key. Rendering is DiffFormatter's.

public struct GroupChange: Sendable {
    public var key: String
    /// Resolved `function file:line` when addr2line could, else the key.
    public var location: String
    public var blocksBefore: Int, blocksAfter: Int
    public var bytesBefore: UInt64, bytesAfter: UInt64
    public var bytesGrowth: Int64 { Int64(bitPattern: bytesAfter &- bytesBefore) }
    public var blocksGrowth: Int { blocksAfter.subtractingReportingOverflow(blocksBefore).partialValue }
}

public struct ProcessChange: Sendable {
    public var name: String
    public var pid: Int?
    public var exe: String?
    public var state: String?
    public var before: SnapshotProcess?
    public var after: SnapshotProcess?
    /// Groups whose blocks or bytes changed, largest growth first, shrinking ones last.
    public var groups: [GroupChange]
    public var bytesGrowth: Int64 { Int64(bitPattern: (after?.liveBytes ?? 0) &- (before?.liveBytes ?? 0)) }
    public var blocksGrowth: Int { (after?.liveBlocks ?? 0).subtractingReportingOverflow(before?.liveBlocks ?? 0).partialValue }
}

public struct SnapshotDiff: Sendable {
    public var before: Snapshot
    public var after: Snapshot
    public var processes: [ProcessChange]
    public var seconds: Double { (Double(after.takenUnixMs) - Double(before.takenUnixMs)) / 1000 }

    public static func compare(_ a: Snapshot, _ b: Snapshot, addr2line: Addr2Line?, rules: WrapperRules) -> SnapshotDiff {
        var names: [String] = []
        for p in a.processes + b.processes where !names.contains(p.name) { names.append(p.name) }
        var processes: [ProcessChange] = names.map { name in
            let x = a.processes.first { $0.name == name }, y = b.processes.first { $0.name == name }
            var changes: [String: GroupChange] = [:]
            var stacks: [String: [SnapshotFrame]] = [:]
            var attributed: [String: Int] = [:]
            for g in x?.groups ?? [] {
                changes[g.key] = GroupChange(key: g.key, location: g.key, blocksBefore: g.blocks, blocksAfter: 0, bytesBefore: g.bytes, bytesAfter: 0)
                stacks[g.key] = g.stack; attributed[g.key] = g.attributedFrame
            }
            for g in y?.groups ?? [] {
                var c = changes[g.key] ?? GroupChange(key: g.key, location: g.key, blocksBefore: 0, blocksAfter: 0, bytesBefore: 0, bytesAfter: 0)
                c.blocksAfter = g.blocks; c.bytesAfter = g.bytes
                changes[g.key] = c
                stacks[g.key] = g.stack; attributed[g.key] = g.attributedFrame
            }
            let changed = changes.values.filter { $0.bytesGrowth != 0 || $0.blocksGrowth != 0 }
                .sorted { ($0.bytesGrowth, $0.blocksGrowth, $1.key) > ($1.bytesGrowth, $1.blocksGrowth, $0.key) }
            var result = ProcessChange(name: name, pid: (y ?? x)?.pid, exe: (y ?? x)?.exe, state: (y ?? x)?.state,
                                       before: x, after: y, groups: changed)
            if let addr2line { resolve(&result.groups, stacks: stacks, attributed: attributed, with: addr2line, rules: rules) }
            return result
        }
        processes.sort { $0.bytesGrowth > $1.bytesGrowth }
        return SnapshotDiff(before: a, after: b, processes: processes)
    }

    /// Each changed group's location as `function file:line`, attributed as `resolve` does.
    static func resolve(_ groups: inout [GroupChange], stacks: [String: [SnapshotFrame]], attributed: [String: Int],
                        with addr2line: Addr2Line, rules: WrapperRules) {
        var wanted: [String: Set<UInt64>] = [:]
        for g in groups {
            for f in stacks[g.key] ?? [] { if let m = f.module, let o = f.offset { wanted[m, default: []].insert(ReportBuilder.adjusted(o)) } }
        }
        let (symbols, _) = addr2line.symbolize(modules: wanted)
        for i in groups.indices {
            guard let stack = stacks[groups[i].key], !stack.isEmpty else { continue }
            let frames = stack.map { f -> Frame in
                var frame = Frame(address: f.address, module: f.module, offset: f.offset)
                if let m = f.module, let o = f.offset, let s = symbols[m]?[ReportBuilder.adjusted(o)] { frame.symbols = s }
                return frame
            }
            let a = ReportBuilder.attribute(frames, rules: rules)
            groups[i].location = frames[a.frame].describe(symbol: a.symbol)
        }
    }
}
