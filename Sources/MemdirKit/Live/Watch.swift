// Watch.swift: the data of `memdir watch`. Every interval a sample of each process's totals
// from its counters file (one read of a small file, however many blocks are live); every few
// intervals a rescan of the run directory for the per-group view, spaced so that the rescans
// take at most about a tenth of the time. Rendering is WatchFormatter's.

/// One process at one moment.
public struct WatchSample: Sendable {
    public var runDirectory: String
    public var pid: Int?
    public var exe: String?
    public var state: String?
    public var timeUnixMs: Int
    public var counters: Counters?
    /// Per second since the previous sample; nil for the first.
    public var allocationsPerSecond: Double?
    public var heapGrowthPerSecond: Double?
    /// The top groups, when this interval rescanned the directory; nil otherwise.
    public var groups: [WatchGroup]?
}

public struct WatchGroup: Sendable {
    public var key: String
    public var location: String
    public var blocks: Int
    public var bytes: UInt64
    /// Since the first rescan of this watch, and since the previous rescan.
    public var growthSinceStart: Int64
    public var growthSinceLast: Int64
}

/// The state a watch keeps between intervals for one process.
public final class ProcessWatch {
    public let runDirectory: String
    public var process: ProcessRecord?
    var previous: (time: Int, counters: Counters)?
    var firstBytes: [String: UInt64] = [:]
    var lastBytes: [String: UInt64] = [:]
    var scanned = false
    var resolvedLocations: [String: String] = [:]

    public init(runDirectory: String) {
        self.runDirectory = runDirectory
        process = ProcessStats.readProcess(runDirectory)
    }

    /// Totals now, from the counters file.
    public func sample(now: Int = BlockAge.nowUnixMs()) -> WatchSample {
        let counters = try? CountersReader.read(runDirectory: runDirectory)
        var s = WatchSample(runDirectory: runDirectory, pid: process?.pid, exe: process?.exe,
                            state: ProcessStats.readStatus(runDirectory)?.state, timeUnixMs: now, counters: counters)
        if let counters, let previous, now > previous.time {
            let seconds = Double(now - previous.time) / 1000
            // In floating point: the counters are words read from a file, any difference may overflow.
            s.allocationsPerSecond = (Double(counters.allocations) - Double(previous.counters.allocations)) / seconds
            s.heapGrowthPerSecond = (Double(counters.heapCurrent) - Double(previous.counters.heapCurrent)) / seconds
        }
        if let counters { previous = (now, counters) }
        return s
    }

    /// Rescans the run directory: the `top` largest groups, with growth, resolved when possible.
    public func groups(top: Int, grouping: GroupingMode, rules: WrapperRules, addr2line: Addr2Line?) -> [WatchGroup] {
        guard let snapshot = try? Snapshot.take(directory: runDirectory, grouping: grouping, rules: rules),
              let p = snapshot.processes.first else { return [] }
        let current = Dictionary(p.groups.map { ($0.key, $0.bytes) }, uniquingKeysWith: { $0 &+ $1 })
        if !scanned { firstBytes = current; lastBytes = current; scanned = true }
        let shown = Array(p.groups.prefix(top))
        if let addr2line {
            let unknown = shown.filter { resolvedLocations[$0.key] == nil }
            if !unknown.isEmpty {
                var changes = unknown.map { GroupChange(key: $0.key, location: $0.key, blocksBefore: 0, blocksAfter: $0.blocks, bytesBefore: 0, bytesAfter: $0.bytes) }
                SnapshotDiff.resolve(&changes, stacks: Dictionary(unknown.map { ($0.key, $0.stack) }, uniquingKeysWith: { a, _ in a }),
                                     attributed: [:], with: addr2line, rules: rules)
                for c in changes { resolvedLocations[c.key] = c.location }
            }
        }
        let result = shown.map { g in
            WatchGroup(key: g.key, location: resolvedLocations[g.key] ?? g.key, blocks: g.blocks, bytes: g.bytes,
                       growthSinceStart: Int64(bitPattern: g.bytes &- (firstBytes[g.key] ?? 0)),
                       growthSinceLast: Int64(bitPattern: g.bytes &- (lastBytes[g.key] ?? 0)))
        }
        lastBytes = current
        return result
    }
}
