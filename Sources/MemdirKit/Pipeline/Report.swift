// Report.swift: the data every formatter renders, and the pipeline that makes it:
// scan (Scanner) -> parse (Records, BlockParser, LeakCheck) -> classify (Classification)
// -> group (Grouper) -> resolve (Addr2Line) -> cut below main (BelowMain)
// -> suppress (Suppressions) -> regroup with
// function-name wrappers -> sort and keep the shown kinds. Formatters (TableFormatter,
// JSONFormatter) only read these types.


/// One stack entry: a return address, where it lies, and what it resolved to.
public struct Frame: Equatable, Sendable {
    public var address: UInt64
    /// Module path as recorded (after `--binary` substitution), nil when no module covers it.
    public var module: String?
    public var offset: UInt64?
    /// Innermost first: `symbols[0]` is the deepest inlined function. Empty when not resolved.
    public var symbols: [Symbol] = []

    /// `module+0xOFFSET` with the basename, or the plain hex address.
    public var moduleLocation: String {
        guard let module, let offset else { return hex(address) }
        return "\(baseName(module))+\(hex(offset))"
    }

    /// `function file:line` for symbol `index`, degrading to `function (module+0xOFF)` and
    /// to `module+0xOFF` where there is no debug info.
    public func describe(symbol index: Int = 0) -> String {
        guard index < symbols.count else { return moduleLocation }
        let s = symbols[index]
        switch (s.function, s.file) {
        case (let f?, let file?): return "\(f) \(file):\(s.line.map(String.init) ?? "?")"
        case (let f?, nil): return "\(f) (\(moduleLocation))"
        case (nil, let file?): return "\(moduleLocation) \(file):\(s.line.map(String.init) ?? "?")"
        case (nil, nil): return moduleLocation
        }
    }
}

/// Which frame (and which inlined symbol of it) a block or event is attributed to.
public struct Attribution: Equatable, Sendable {
    public var frame: Int
    public var symbol: Int
}

public struct LeakGroup: Sendable {
    /// Every block of a group has this kind: groups are keyed by (location, kind).
    public var kind: LeakKind
    public var blocks: Int
    public var bytes: UInt64
    /// The sample block's whole stack.
    public var stack: [Frame]
    public var attributed: Attribution
    public var sample: BlockSample

    public var location: String {
        let fromStack = stack.isEmpty ? "(no stack)" : stack[attributed.frame].describe(symbol: attributed.symbol)
        return NotedSource.combine(fromStack: fromStack, stack: stack, attributed: attributed, source: sample.source)
    }
}

public struct BadFree: Sendable {
    public var record: BadFreeRecord
    public var stack: [Frame]
    public var attributed: Attribution
    public var allocStack: [Frame]?
    public var allocAttributed: Attribution?
    public var freeStack: [Frame]?
    public var freeAttributed: Attribution?

    static func describe(_ stack: [Frame]?, _ a: Attribution?) -> String? {
        guard let stack, let a else { return nil }
        return stack.isEmpty ? "(no stack)" : stack[a.frame].describe(symbol: a.symbol)
    }
    public var location: String { Self.describe(stack, attributed)! }
    public var allocLocation: String? { Self.describe(allocStack, allocAttributed) }
    public var freeLocation: String? { Self.describe(freeStack, freeAttributed) }
}

public struct ProcessReport: Sendable {
    public var directory: String
    public var name: String
    public var process: ProcessRecord?
    public var status: StatusRecord?
    public var leaks: [LeakGroup]
    public var badFrees: [BadFree]
    public var problems: [MemdirError]
    public var problemCount: Int
    /// The leak check's verdicts for this process, or why there are none.
    public var classification: Classification
    /// Blocks and bytes of every kind, shown or not, and of suppressed blocks.
    public var totals = LeakTotals()
    /// How many blocks each suppression (by index in ReportOptions.suppressions) took.
    public var suppressionUses: [Int: Tally] = [:]
    /// Bad frees taken out by `Memcheck:Free` entries, and how many each entry (by index) took.
    public var suppressedBadFrees = 0
    public var badFreeSuppressionUses: [Int: Int] = [:]
    /// Shared memory never given back (SharedMemory.swift).
    public var mappings: [MappingReport] = []
    public var segments: [SegmentReport] = []

    /// Lost blocks: definitely, indirectly and possibly lost, after suppressions.
    public var leakedBlocks: Int { totals.lost.blocks }
    public var leakedBytes: UInt64 { totals.lost.bytes }
    /// Why some blocks are not classified, when some are.
    public var unclassifiedReason: String? {
        guard totals[.notClassified].blocks > 0 else { return nil }
        return classification.reason ?? Classification.afterCheckReason
    }
    /// Why this process's record is not the whole truth (empty when it is): see
    /// `ReportBuilder.incompleteness`. A report never says "no leaks" over any of these.
    public var incompleteReasons: [String] = []
    /// The tracker could not record everything, or memdir could not read everything.
    public var recordIncomplete: Bool { !incompleteReasons.isEmpty }
}

/// A count of blocks and their bytes.
public struct Tally: Equatable, Sendable {
    public var blocks = 0
    public var bytes: UInt64 = 0
    public init(blocks: Int = 0, bytes: UInt64 = 0) { self.blocks = blocks; self.bytes = bytes }
    public mutating func add(_ other: Tally) { blocks += other.blocks; bytes &+= other.bytes }
}

/// valgrind's LEAK SUMMARY: a tally per kind, plus the suppressed blocks.
public struct LeakTotals: Equatable, Sendable {
    public var byKind: [LeakKind: Tally] = [:]
    public var suppressed = Tally()

    public init() {}
    public subscript(kind: LeakKind) -> Tally {
        get { byKind[kind] ?? Tally() }
        set { byKind[kind] = newValue }
    }
    public var lost: Tally {
        var t = Tally()
        for k in LeakKind.allCases where k.isLost { t.add(self[k]) }
        return t
    }
    public mutating func add(_ other: LeakTotals) {
        for (k, t) in other.byKind { self[k].add(t) }
        suppressed.add(other.suppressed)
    }
}

public struct Report: Sendable {
    public var directory: String
    public var grouping: GroupingMode
    public var resolved: Bool
    public var processes: [ProcessReport]
    /// addr2line failures per module file (the frames keep `module+0xOFFSET`).
    public var resolveFailures: [String: String] = [:]

    /// The kinds whose groups are listed (`--show-leak-kinds`); not-classified groups are listed
    /// unless this is empty.
    public var shownKinds: Set<LeakKind> = LeakOptions.defaultShown
    /// The suppressions applied, in the order given.
    public var suppressions: [Suppression] = []
    /// True when suppressions were applied without function names (`list`): only their module
    /// (obj:) parts could match.
    public var suppressionsWithoutSymbols = false

    public var leakedBlocks: Int { processes.reduce(0) { $0 + $1.leakedBlocks } }
    public var leakedBytes: UInt64 { processes.reduce(0) { $0 + $1.leakedBytes } }
    public var totals: LeakTotals { processes.reduce(into: LeakTotals()) { $0.add($1.totals) } }
    /// Blocks taken by each suppression over all processes, in the order the suppressions were given.
    public var suppressionUses: [(suppression: Suppression, tally: Tally)] {
        var sum: [Int: Tally] = [:]
        for p in processes { for (i, t) in p.suppressionUses { sum[i, default: Tally()].add(t) } }
        return sum.keys.sorted().map { (suppressions[$0], sum[$0]!) }
    }
    public var badFreeCount: Int { processes.reduce(0) { $0 + $1.badFrees.count } }
    /// Bad frees a suppression took out (they never fail the gate).
    public var suppressedBadFreeCount: Int { processes.reduce(0) { $0 + $1.suppressedBadFrees } }
    /// Bad frees taken by each `Memcheck:Free` entry over all processes, in the order given.
    public var badFreeSuppressionUses: [(suppression: Suppression, count: Int)] {
        var sum: [Int: Int] = [:]
        for p in processes { for (i, n) in p.badFreeSuppressionUses { sum[i, default: 0] += n } }
        return sum.keys.sorted().map { (suppressions[$0], sum[$0]!) }
    }

    /// The gate of `memdir run`: blocks of `kinds` (after suppressions), bad frees, shared memory
    /// never given back, or an incomplete record. Not-classified blocks never count.
    public func gateFails(kinds: Set<LeakKind>) -> Bool {
        mappingCount + segmentCount > 0 || processes.contains { p in
            !p.badFrees.isEmpty || p.recordIncomplete || kinds.contains { p.totals[$0].blocks > 0 }
        }
    }
    public var mappingCount: Int { processes.reduce(0) { $0 + $1.mappings.count } }
    public var segmentCount: Int { processes.reduce(0) { $0 + $1.segments.count } }
    /// Some process's record is incomplete: "no leaks" would not be the whole truth.
    public var isIncomplete: Bool { processes.contains { $0.recordIncomplete } }
    /// No lost blocks (after suppressions), no bad frees, no shared memory left behind, and a
    /// complete record to say so.
    public var isClean: Bool {
        leakedBlocks == 0 && badFreeCount == 0 && mappingCount == 0 && segmentCount == 0 && !isIncomplete
    }
    public var problemCount: Int { processes.reduce(0) { $0 + $1.problemCount } }

    /// The error a command ends with after printing the report: unsupported version (6) wins
    /// over malformed (5), which wins over unreadable run directories (3).
    public var firstProblem: MemdirError? {
        let all = processes.flatMap(\.problems)
        return all.first { if case .unsupportedVersion = $0 { true } else { false } }
            ?? all.first { if case .malformedRecord = $0 { true } else { false } }
            ?? all.first
    }
}

public struct ReportOptions: Sendable {
    public var grouping: GroupingMode = .frame
    public var rules = WrapperRules()
    public var resolve = false
    /// Replaces the recorded path of the main executable (`--binary`).
    public var binary: String?
    /// `--ignore-build-id`: use `binary` even when its build-id is not the recorded one.
    public var ignoreBuildID = false
    public var addr2line: Addr2Line?
    /// `--show-leak-kinds` and `--suppressions`.
    public var leaks = LeakOptions()
    /// `list --older-than`: only blocks allocated at least this many ms ago.
    public var olderThanMs: UInt64?
    /// `check`: the classification to use per run directory (its name -> `leak-check-SEQ`)
    /// instead of the exit-time `leak-check`.
    public var leakCheckNames: [String: String] = [:]

    public init(grouping: GroupingMode = .frame, rules: WrapperRules = WrapperRules(), resolve: Bool = false,
                binary: String? = nil, addr2line: Addr2Line? = nil, leaks: LeakOptions = LeakOptions()) {
        self.grouping = grouping
        self.rules = rules
        self.resolve = resolve
        self.binary = binary
        self.addr2line = addr2line
        self.leaks = leaks
    }
}

/// Which kinds a report lists, and what it suppresses.
public struct LeakOptions: Sendable {
    /// valgrind's default `--show-leak-kinds=definite,possible` plus indirect: the lost kinds.
    public static let defaultShown: Set<LeakKind> = [.definitelyLost, .indirectlyLost, .possiblyLost]
    public var shownKinds: Set<LeakKind> = defaultShown
    public var suppressions: [Suppression] = []
    /// `--show-below-main=yes` (BelowMain.swift).
    public var showBelowMain = false

    public init(shownKinds: Set<LeakKind> = defaultShown, suppressions: [Suppression] = []) {
        self.shownKinds = shownKinds
        self.suppressions = suppressions
    }
}

public enum ReportBuilder {
    /// `--binary` must exist, and be the executable that ran when both have a build-id.
    static func checkBinary(_ binary: String, against module: ModuleLine?, ignoreBuildID: Bool) throws(MemdirError) {
        let found = try BuildID.read(path: binary)
        guard !ignoreBuildID, let recorded = module?.buildID, let found, found != recorded else { return }
        throw .binaryMismatch(path: binary, recorded: recorded, found: found, executable: module?.path ?? "the program")
    }

    /// Runs the whole pipeline over `directory` (a MEM_DIR or one run directory).
    /// Throws only for the directory as a whole (3, 4, 7); record problems land in the report.
    public static func build(directory: String, options: ReportOptions) throws(MemdirError) -> Report {
        var addr2line = options.addr2line
        if options.resolve && addr2line == nil { addr2line = try Addr2Line.locate() }
        let runs = try Scanner.runDirectories(in: directory)
        // Resolving may move the attribution past frames whose *names* are wrappers, so the scan
        // then keeps whole stacks and the final grouping happens after symbolization.
        // Suppressions match whole stacks, so they too need whole-stack groups first. Without
        // names, the default suppressions (all of them name functions) cannot match: left out.
        let suppressions = options.leaks.suppressions.filter { options.resolve || !$0.builtIn || !$0.needsSymbols }
        let scanMode: GroupingMode = (options.resolve && options.grouping == .frame) || !suppressions.isEmpty
            ? .stack : options.grouping
        var scans = runs.map { Scanner.scan(runDirectory: $0, mode: scanMode, rules: options.rules, olderThanMs: options.olderThanMs,
                                               leakCheckName: options.leakCheckNames[baseName($0)] ?? "leak-check") }
        SharedMemory.checkExistence(&scans)
        let mainExe = scans.first?.process?.exe
        if let binary = options.binary {
            try checkBinary(binary, against: scans.first?.modules.lines.first { $0.path == mainExe }, ignoreBuildID: options.ignoreBuildID)
        }

        func frames(_ stack: [UInt64], seq: UInt64, modules: ModuleMap) -> [Frame] {
            stack.map { address in
                guard let loc = modules.locate(address, seq: seq) else { return Frame(address: address) }
                var path = loc.path
                if let binary = options.binary, path == mainExe { path = binary }
                return Frame(address: address, module: path, offset: loc.offset)
            }
        }

        var processes: [ProcessReport] = scans.map { scan in
            let leaks = scan.leaks.map { agg in
                LeakGroup(kind: agg.kind, blocks: agg.blocks, bytes: agg.bytes, stack: frames(agg.sample.stack, seq: agg.sample.seq, modules: scan.modules),
                          attributed: Attribution(frame: 0, symbol: 0), sample: agg.sample)
            }
            let badFrees = scan.badFrees.map { r in
                BadFree(record: r, stack: frames(r.stack, seq: r.seq, modules: scan.modules), attributed: Attribution(frame: 0, symbol: 0),
                        allocStack: r.allocStack.map { frames($0, seq: r.seq, modules: scan.modules) },
                        freeStack: r.freeStack.map { frames($0, seq: r.seq, modules: scan.modules) })
            }
            var report = ProcessReport(directory: scan.directory, name: scan.name, process: scan.process, status: scan.status,
                                       leaks: leaks, badFrees: badFrees, problems: scan.problems, problemCount: scan.problemCount,
                                       classification: scan.classification)
            (report.mappings, report.segments) = SharedMemory.reports(scan.sharedMemory) { frames($0, seq: $1, modules: scan.modules) }
            report.incompleteReasons = incompleteness(scan)
            return report
        }

        var failures: [String: String] = [:]
        if options.resolve, let addr2line {
            failures = resolve(&processes, with: addr2line)
        }
        if !options.leaks.showBelowMain {
            let executables = Set(scans.compactMap { $0.process?.exe } + [options.binary].compactMap { $0 })
            BelowMain.truncate(&processes, executables: executables)
        }
        for i in processes.indices {
            suppress(&processes[i], suppressions)
            for g in processes[i].leaks { processes[i].totals[g.kind].add(Tally(blocks: g.blocks, bytes: g.bytes)) }
            processes[i].leaks = regroup(processes[i].leaks, options: options).filter {
                $0.kind == .notClassified ? !options.leaks.shownKinds.isEmpty : options.leaks.shownKinds.contains($0.kind)
            }
            for j in processes[i].badFrees.indices {
                var b = processes[i].badFrees[j]
                b.attributed = attribute(b.stack, rules: options.rules)
                b.allocAttributed = b.allocStack.map { attribute($0, rules: options.rules) }
                b.freeAttributed = b.freeStack.map { attribute($0, rules: options.rules) }
                processes[i].badFrees[j] = b
            }
            for m in processes[i].mappings.indices {
                processes[i].mappings[m].attributed = attribute(processes[i].mappings[m].stack, rules: options.rules)
            }
            for s in processes[i].segments.indices {
                processes[i].segments[s].attributed = attribute(processes[i].segments[s].stack, rules: options.rules)
            }
        }
        return Report(directory: directory, grouping: options.grouping, resolved: options.resolve,
                      processes: processes, resolveFailures: failures, shownKinds: options.leaks.shownKinds,
                      suppressions: suppressions,
                      suppressionsWithoutSymbols: !options.resolve && suppressions.contains { $0.needsSymbols && !$0.builtIn })
    }

    /// Every reason the CLI can see that a process's record is incomplete: the tracker said so
    /// (a `status` counter or its `error`: it warned), it left no final word (no `status`; a
    /// `running` state whose process is gone: SIGKILL, or a status it could not rewrite), its
    /// leak check is missing after a normal exit, cut short, failed or unreadable, or memdir
    /// could not read some record.
    static func incompleteness(_ scan: RunScan) -> [String] {
        var reasons: [String] = []
        if let status = scan.status {
            if !status.isComplete {
                reasons.append("\(status.unrecordedBlocks) live blocks not recorded, \(status.unremovedRecords) freed blocks not removed, "
                               + "\(status.unrecordedEvents) bad frees not recorded")
            }
            if let error = status.error { reasons.append("the tracker warned: \(error)") }
            if status.state == "running", let pid = scan.process?.pid, pid > 0, pid <= Int(Int32.max),
               processIsGone(Int32(pid)) {
                reasons.append("state running, but process \(pid) is gone: its final status was never written (SIGKILL, or no room or permission to write it)")
            }
        } else {
            reasons.append("no status record")
        }
        if let why = scan.classification.incomplete { reasons.append(why) }
        if scan.problemCount > 0 {
            reasons.append("\(scan.problemCount) record file\(scan.problemCount == 1 ? "" : "s") could not be read")
        }
        return reasons
    }

    /// Takes the groups a suppression matches out of the report, counting them (the groups
    /// hold whole stacks here).
    static func suppress(_ process: inout ProcessReport, _ suppressions: [Suppression]) {
        guard !suppressions.isEmpty else { return }
        process.leaks.removeAll { g in
            let stack = MatchFrame.stack(g.stack, via: g.sample.via)
            guard let i = SuppressionMatcher.match(suppressions, stack: stack, kind: g.kind) else { return false }
            let tally = Tally(blocks: g.blocks, bytes: g.bytes)
            process.totals.suppressed.add(tally)
            process.suppressionUses[i, default: Tally()].add(tally)
            return true
        }
        process.badFrees.removeAll { b in
            let stack = MatchFrame.stack(b.stack, via: b.record.via)
            guard let i = SuppressionMatcher.matchBadFree(suppressions, stack: stack, kind: b.record.kind) else { return false }
            process.suppressedBadFrees += 1
            process.badFreeSuppressionUses[i, default: 0] += 1
            return true
        }
    }

    /// Every stack entry is a return address: step back into the call instruction.
    public static func adjusted(_ offset: UInt64) -> UInt64 { offset > 0 ? offset - 1 : 0 }

    static func resolve(_ processes: inout [ProcessReport], with addr2line: Addr2Line) -> [String: String] {
        var wanted: [String: Set<UInt64>] = [:]
        func collect(_ stack: [Frame]?) {
            for f in stack ?? [] { if let m = f.module, let o = f.offset { wanted[m, default: []].insert(adjusted(o)) } }
        }
        for p in processes {
            for g in p.leaks { collect(g.stack) }
            for b in p.badFrees { collect(b.stack); collect(b.allocStack); collect(b.freeStack) }
            for m in p.mappings { collect(m.stack) }
            for s in p.segments { collect(s.stack) }
        }
        let (symbols, failures) = addr2line.symbolize(modules: wanted)
        func fill(_ stack: inout [Frame]) {
            for k in stack.indices {
                if let m = stack[k].module, let o = stack[k].offset, let s = symbols[m]?[adjusted(o)] { stack[k].symbols = s }
            }
        }
        for i in processes.indices {
            for g in processes[i].leaks.indices { fill(&processes[i].leaks[g].stack) }
            for b in processes[i].badFrees.indices {
                fill(&processes[i].badFrees[b].stack)
                if processes[i].badFrees[b].allocStack != nil { fill(&processes[i].badFrees[b].allocStack!) }
                if processes[i].badFrees[b].freeStack != nil { fill(&processes[i].badFrees[b].freeStack!) }
            }
            for m in processes[i].mappings.indices { fill(&processes[i].mappings[m].stack) }
            for s in processes[i].segments.indices { fill(&processes[i].segments[s].stack) }
        }
        return failures
    }

    /// The first (frame, inlined symbol) outside wrappers: a frame in a wrapper module is skipped
    /// whole; otherwise its symbols are tried innermost first against the function patterns.
    /// If everything is a wrapper, the last frame (its outermost symbol).
    public static func attribute(_ stack: [Frame], rules: WrapperRules) -> Attribution {
        guard !stack.isEmpty else { return Attribution(frame: 0, symbol: 0) }
        for (i, frame) in stack.enumerated() {
            if let m = frame.module, rules.isWrapperModule(path: m) { continue }
            if frame.symbols.isEmpty { return Attribution(frame: i, symbol: 0) }
            for (j, s) in frame.symbols.enumerated() {
                guard let f = s.function, rules.isWrapperFunction(f) else { return Attribution(frame: i, symbol: j) }
            }
        }
        return Attribution(frame: stack.count - 1, symbol: max(0, stack[stack.count - 1].symbols.count - 1))
    }

    /// Final grouping: attribute each group, merge groups that share a key, sort by bytes.
    static func regroup(_ groups: [LeakGroup], options: ReportOptions) -> [LeakGroup] {
        var merged: [GroupKey: LeakGroup] = [:]
        for var g in groups {
            let addresses = g.stack.map(\.address)
            let key: [UInt64]
            switch options.grouping {
            case .caller:
                g.attributed = Attribution(frame: 0, symbol: 0)
                key = Array(addresses.prefix(1))
            case .frame:
                g.attributed = attribute(g.stack, rules: options.rules)
                key = addresses.isEmpty ? [] : [addresses[g.attributed.frame], UInt64(g.attributed.symbol)]
            case .stack:
                g.attributed = attribute(g.stack, rules: options.rules)
                key = addresses
            }
            if var existing = merged[GroupKey(frames: key, kind: g.kind)] {
                existing.blocks += g.blocks
                existing.bytes &+= g.bytes
                if g.sample.seq < existing.sample.seq {
                    existing.sample = g.sample; existing.stack = g.stack; existing.attributed = g.attributed
                }
                merged[GroupKey(frames: key, kind: g.kind)] = existing
            } else {
                merged[GroupKey(frames: key, kind: g.kind)] = g
            }
        }
        // valgrind's order of kinds, then bytes, largest first.
        return merged.values.sorted {
            ($1.kind.rawValue, $0.bytes, $0.blocks, $1.sample.seq) > ($0.kind.rawValue, $1.bytes, $1.blocks, $0.sample.seq)
        }
    }
}
