// ReportCommand.swift: `memdir report DIR --html FILE`: the resolved report as one
// self-contained HTML page (HTMLReport), with a chart when snapshots or a watch history are given.

public struct ReportCommand: Command {
    public static let name = "report"
    public static let summary = "Write the resolved report as one self-contained HTML page with an icicle graph."
    public static let usage = "memdir report [DIR] --html FILE [--snapshot FILE]... [--history FILE] [--binary PATH] [--addr2line PATH] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--default-suppressions yes|no]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR or one run directory. The page needs no network: style, script and
        data are inline. Snapshots (memdir snapshot) and a watch history (memdir watch --json > FILE) add a
        chart of live bytes over time for the largest groups. Suppressions take their blocks out of the icicle
        and the text report alike, as resolve's; the text report lists the --show-leak-kinds kinds.
        """
    public static let options = [
        OptionSpec("--html", value: "FILE", help: "Write the page to FILE (required)."),
        OptionSpec("--snapshot", value: "FILE", repeatable: true, help: "A snapshot to chart (two or more make a line)."),
        OptionSpec("--history", value: "FILE", help: "JSON lines written by memdir watch --json, to chart."),
        OptionSpec("--binary", value: "PATH", help: "Resolve the main executable's frames in PATH (it must be the program that ran: same build-id)."),
        OptionSpec("--ignore-build-id", help: "Use --binary even when its build-id is not the one recorded."),
        OptionSpec("--by", value: "caller|frame|stack", help: "Grouping of the text report (default frame)."),
        OptionSpec("--wrapper", value: "NAME", repeatable: true, help: "Also treat function NAME (or prefix NAME*) as an allocation wrapper."),
        Addr2LineFlag.option,
    ] + LeakFlags.options.filter { ["--show-leak-kinds", "--suppressions", "--default-suppressions"].contains($0.name) }

    public var directory: String
    public var html: String
    public var snapshots: [String]
    public var history: String?
    public var binary: String?
    public var ignoreBuildID = false
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var addr2lineFlag: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        directory = try a.onlyPositional(default: "./mem")
        addr2lineFlag = Addr2LineFlag(a)
        guard let html = a.value("--html") else { throw .usage("missing '--html FILE'") }
        self.html = html
        snapshots = a.all("--snapshot")
        history = a.value("--history")
        binary = a.value("--binary")
        ignoreBuildID = a.flag("--ignore-build-id")
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        // A bad suppressions file fails before any work.
        let leaks = try leakFlags.leakOptions()
        // Every live block a suppression does not take, still reachable ones included, for the
        // icicle ("all live blocks").
        let addr2line: Addr2Line
        if let chosen = try addr2lineFlag.given() { addr2line = chosen } else { addr2line = try Addr2Line.locate() }
        var everyKind = leaks
        everyKind.shownKinds = Set(LeakKind.allCases)
        var stackOptions = ReportOptions(grouping: .stack, rules: flags.rules, resolve: true, binary: binary, addr2line: addr2line,
                                         leaks: everyKind)
        stackOptions.ignoreBuildID = ignoreBuildID
        var stacks = try ReportPipeline(stackOptions).report(directory)
        let flame = HTMLReport.flame(stacks)
        let kinds = Set(stacks.processes.flatMap { $0.leaks.map(\.kind) })
        // The text report lists the kinds resolve would (--show-leak-kinds), regrouped the way the user asked.
        let options = ReportOptions(grouping: flags.grouping, rules: flags.rules, resolve: true, binary: binary, addr2line: addr2line)
        for i in stacks.processes.indices {
            let shown = stacks.processes[i].leaks.filter { leaks.lists($0.kind) }
            stacks.processes[i].leaks = ReportBuilder.regroup(shown, options: options)
        }
        stacks.grouping = flags.grouping
        stacks.shownKinds = leaks.shownKinds
        let largest = stacks.processes.flatMap(\.leaks).max { $0.bytes < $1.bytes }?.location

        var loaded: [Snapshot] = []
        for path in snapshots {
            do { loaded.append(try Snapshot.load(path: path)) } catch {
                throw FileKinds.explain(error, expected: FileKinds.snapshot, hint: FileKinds.snapshotHint)
            }
        }
        let samples = try history.map { (path: String) throws(MemdirError) in try WatchHistory.load(path: path) } ?? []
        var page = HTMLReport(title: "memdir report: \(directory)", flame: flame, largest: largest,
                              series: HTMLReport.series(snapshots: loaded, history: samples,
                                                        labels: Self.locations(of: loaded, addr2line: addr2line, rules: flags.rules)),
                              summary: TableFormatter().format(stacks))
        page.inputs = ChartInputs(snapshots: loaded.count, history: history, samples: samples)
        page.flameNote = kinds.isEmpty ? "No live blocks."
            : !kinds.contains(.notClassified) ? "Every block live at exit, by kind: \(Self.kindsPresent(kinds)) (the report below lists \(leaks.shownKinds == LeakOptions.defaultShown ? "the lost kinds" : "the kinds asked for"))."
            : kinds == [.notClassified] ? "Every block live now (blocks are classified by kind at exit, or by memdir check)."
            : "Every live block: by kind for the processes that have ended, unclassified for those still running."
        let suppressed = stacks.processes.reduce(0) { $0 + $1.totals.suppressed.blocks }
        if suppressed > 0 {
            page.flameNote += " Suppressions took \(countText(suppressed)) block\(suppressed == 1 ? "" : "s") out of it."
        }
        try SnapshotCommand.writeAtomically(page.render(), to: html)
        console.err("memdir: report written to \(html)\n")
        return reportProblems(stacks, console: console)
    }

    /// What the icicle of classified blocks holds: lost ones, still reachable ones, or both.
    static func kindsPresent(_ kinds: Set<LeakKind>) -> String {
        let lost = kinds.contains { $0 != .stillReachable && $0 != .notClassified }
        if !lost { return "only still reachable ones, none lost" }
        return kinds.contains(.stillReachable) ? "the lost ones and the still reachable ones" : "only lost ones"
    }

    /// Each snapshot group's key -> its resolved location (`function file:line`), attributed as
    /// resolve does, for the chart's legend.
    static func locations(of snapshots: [Snapshot], addr2line: Addr2Line, rules: WrapperRules) -> [String: String] {
        var changes: [GroupChange] = []
        var stacks: [String: [SnapshotFrame]] = [:], attributed: [String: Int] = [:]
        for s in snapshots {
            for p in s.processes {
                for g in p.groups where stacks[g.key] == nil {
                    changes.append(GroupChange(key: g.key, location: g.key, blocksBefore: 0, blocksAfter: g.blocks, bytesBefore: 0, bytesAfter: g.bytes))
                    stacks[g.key] = g.stack; attributed[g.key] = g.attributedFrame
                }
            }
        }
        guard !changes.isEmpty else { return [:] }
        SnapshotDiff.resolve(&changes, stacks: stacks, attributed: attributed, with: addr2line, rules: rules)
        return Dictionary(changes.map { ($0.key, $0.location) }, uniquingKeysWith: { a, _ in a })
    }
}

/// Reads the JSON lines `memdir watch --json` writes back into samples (for the chart).
public enum WatchHistory {
    public static func load(path: String) throws(MemdirError) -> [WatchSample] {
        let text: String
        switch readTextFile(path, limit: FileLimit.jsonFile, followLinks: true) {
        case .success(let t): text = t
        case .failure(let code): throw .directoryUnreadable(path: path, reason: "cannot read the history file: \(errnoText(code).lowercasedFirst)")
        case .rejected(let why): throw .malformedRecord(path: path, reason: why)
        }
        var samples: [WatchSample] = []
        // Lines split on bytes (not Characters: a history may hold many megabytes).
        for (n, line) in text.utf8.split(separator: 10).enumerated() {
            let v: JSONValue
            do throws(JSONParser.Failure) { v = try JSONParser.parse(String(decoding: line, as: UTF8.self)) } catch {
                // A pretty-printed memdir file (a snapshot, a report) is one JSON document.
                if n == 0, let schema = FileKinds.schema(ofJSON: text) {
                    throw FileKinds.explain(.unsupportedVersion(path: path, version: schema), expected: FileKinds.history, hint: FileKinds.historyHint)
                }
                throw .malformedRecord(path: path, reason: "line \(n + 1): \(error.message)")
            }
            guard let schema = v["schema"]?.stringValue else { throw .malformedRecord(path: path, reason: "line \(n + 1): no schema") }
            guard schema == WatchFormatter.schema else {
                throw FileKinds.explain(.unsupportedVersion(path: path, version: String(schema.prefix(40))), expected: FileKinds.history, hint: FileKinds.historyHint)
            }
            // A time between 1970 and year 37,000 (as snapshots): the chart subtracts times.
            guard let time = v["time_unix_ms"]?.intValue, (0...Snapshot.latestUnixMs).contains(time),
                  let run = v["run_directory"]?.stringValue else {
                throw .malformedRecord(path: path, reason: "line \(n + 1): time_unix_ms or run_directory missing")
            }
            let groups = v["groups"]?.arrayValue?.map { g in
                WatchGroup(key: g["key"]?.stringValue ?? "?", location: g["location"]?.stringValue ?? "?",
                           blocks: Int(max(0, g["blocks"]?.intValue ?? 0)), bytes: g["bytes"]?.unsignedValue ?? 0,
                           growthSinceStart: g["growth_since_start"]?.intValue ?? 0, growthSinceLast: g["growth_last"]?.intValue ?? 0)
            }
            // The totals, where the line has them (null without a counters file).
            let counters = v["heap_current"]?.intValue.map { current in
                Counters(calls: Array(repeating: 0, count: counterEntryPoints.count), bytesRequested: 0, heapCurrent: current,
                         liveBlocks: v["live_blocks"]?.intValue ?? 0, heapPeak: v["heap_peak"]?.intValue ?? current,
                         peakTolerance: 0, histogram: [], threads: 0)
            }
            samples.append(WatchSample(runDirectory: run, pid: v["pid"]?.intValue.map { Int($0) }, exe: nil, state: v["state"]?.stringValue,
                                       timeUnixMs: Int(time), counters: counters, groups: groups))
        }
        return samples
    }
}
