// Report.swift: the model the pipeline's stages hand on (ReportPipeline.swift): frames,
// groups, bad frees and processes as the analysis leaves them, and the options that steer it.
// Formatters (Output/) only read these types.

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
    /// Indirectly lost blocks counted per clique leader (LSan's suppressions): the leader's
    /// address, 0 otherwise.
    public var leader: UInt64 = 0

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
    /// The group key of every clique leader, when indirectly lost blocks are counted per leader.
    var leaderKeys: [UInt64: GroupKey] = [:]

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

    /// Whether a group of this kind is listed: unclassified blocks (a process still running)
    /// unless no kind is shown at all.
    public func lists(_ kind: LeakKind) -> Bool {
        kind == .notClassified ? !shownKinds.isEmpty : shownKinds.contains(kind)
    }
}
