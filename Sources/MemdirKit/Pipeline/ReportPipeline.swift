// ReportPipeline.swift: the stages of a report, named in one place (as swift-openapi-generator's
// GeneratorPipeline names its own), each a function of what the stage before it gave:
//
//   scan      run directories under a MEM_DIR, then each one's records    Records/Scanner
//   parse     process, modules, status, block and bad-free records      Records/
//   classify  each block's leak kind, from the leak-check record        Analysis/LeakCheck
//   group     blocks counted under a key (--by), the sample's stack     Analysis/Grouping
//               as frames in modules                                     -> [ProcessReport]
//   resolve   frames to `function file:line` with addr2line              Analysis/Resolver
//   refine    cut below main, suppress, attribute past wrappers,        Analysis/ReportBuilder
//               regroup, keep the shown kinds                            -> Report
//   render    the Report as a table, JSON, folded stacks, SARIF ...     Output/
//
// Scan, parse, classify and the first grouping run as one pass per run directory (a million
// blocks are counted as they are read, never held), so `scan` hands on grouped RunScans.
// Every command that prints a report (list, resolve, run, check, snapshot, report, diff) goes
// through `report(_:)`; what each then renders is its own.

public struct ReportPipeline: Sendable {
    public var options: ReportOptions

    public init(_ options: ReportOptions) {
        self.options = options
    }

    /// Every stage but render, over `directory` (a MEM_DIR or one run directory). Throws only
    /// for the directory as a whole (3, 4, 7); record problems land in the report.
    public func report(_ directory: String) throws(MemdirError) -> Report {
        var addr2line = options.addr2line
        if options.resolve && addr2line == nil { addr2line = try Addr2Line.locate() }
        let suppressions = applicableSuppressions
        let scans = try scan(directory, suppressions: suppressions)
        var processes = try group(scans)
        let failures = options.resolve ? addr2line.map { resolve(&processes, with: $0) } ?? [:] : [:]
        refine(&processes, scans: scans, suppressions: suppressions)
        return Report(directory: directory, grouping: options.grouping, resolved: options.resolve,
                      processes: processes, resolveFailures: failures, shownKinds: options.leaks.shownKinds,
                      suppressions: suppressions,
                      suppressionsWithoutSymbols: !options.resolve && suppressions.contains { $0.needsSymbols && !$0.builtIn })
    }

    /// The render stage: the report as `formatter` writes it.
    public static func render(_ report: Report, as formatter: any OutputFormatter) -> String {
        formatter.format(report)
    }

    // MARK: - The stages

    /// Without function names the default suppressions (all of them name functions) cannot
    /// match: left out unless the pipeline resolves.
    var applicableSuppressions: [Suppression] {
        options.leaks.suppressions.filter { options.resolve || !$0.builtIn || !$0.needsSymbols }
    }

    /// Scan, parse, classify and count each run directory's blocks under their scan key. Resolving
    /// may move the attribution past frames whose *names* are wrappers, so the scan then keeps
    /// whole stacks and the final grouping happens after symbolization. Suppressions match whole
    /// stacks, so they too need whole-stack groups first.
    func scan(_ directory: String, suppressions: [Suppression]) throws(MemdirError) -> [RunScan] {
        let runs = try Scanner.runDirectories(in: directory)
        let scanMode: GroupingMode = (options.resolve && options.grouping == .frame) || !suppressions.isEmpty
            ? .stack : options.grouping
        // LSan's `leak:` lines suppress what a suppressed block alone reaches: that needs each
        // indirectly lost block's clique leader.
        let splitByLeader = suppressions.contains { if case .lsan = $0.pattern { true } else { false } }
        var scans = runs.map { Scanner.scan(runDirectory: $0, mode: scanMode, rules: options.rules, olderThanMs: options.olderThanMs,
                                               leakCheckName: options.leakCheckNames[baseName($0)] ?? "leak-check",
                                               splitByLeader: splitByLeader) }
        SharedMemory.checkExistence(&scans)
        return scans
    }

    /// The groups, bad frees and shared memory of each scan, their stacks as frames located in
    /// the process's modules (`--binary` standing in for the main executable, once checked).
    func group(_ scans: [RunScan]) throws(MemdirError) -> [ProcessReport] {
        let mainExe = scans.first?.process?.exe
        if let binary = options.binary {
            try ReportBuilder.checkBinary(binary, against: scans.first?.modules.lines.first { $0.path == mainExe },
                                          ignoreBuildID: options.ignoreBuildID)
        }
        func frames(_ stack: [UInt64], seq: UInt64, modules: ModuleMap) -> [Frame] {
            stack.map { address in
                guard let loc = modules.locate(address, seq: seq) else { return Frame(address: address) }
                var path = loc.path
                if let binary = options.binary, path == mainExe { path = binary }
                return Frame(address: address, module: path, offset: loc.offset)
            }
        }
        return scans.map { scan in
            let leaks = scan.leaks.map { agg in
                LeakGroup(kind: agg.kind, blocks: agg.blocks, bytes: agg.bytes, stack: frames(agg.sample.stack, seq: agg.sample.seq, modules: scan.modules),
                          attributed: Attribution(frame: 0, symbol: 0), sample: agg.sample, leader: agg.key.leader)
            }
            let badFrees = scan.badFrees.map { r in
                BadFree(record: r, stack: frames(r.stack, seq: r.seq, modules: scan.modules), attributed: Attribution(frame: 0, symbol: 0),
                        allocStack: r.allocStack.map { frames($0, seq: r.seq, modules: scan.modules) },
                        freeStack: r.freeStack.map { frames($0, seq: r.seq, modules: scan.modules) })
            }
            var report = ProcessReport(directory: scan.directory, name: scan.name, process: scan.process, status: scan.status,
                                       leaks: leaks, badFrees: badFrees, problems: scan.problems, problemCount: scan.problemCount,
                                       classification: scan.classification)
            report.leaderKeys = scan.leaderKeys
            (report.mappings, report.segments) = SharedMemory.reports(scan.sharedMemory) { frames($0, seq: $1, modules: scan.modules) }
            report.incompleteReasons = ReportBuilder.incompleteness(scan)
            return report
        }
    }

    /// Every distinct module offset through addr2line, at once; the failures per module file.
    func resolve(_ processes: inout [ProcessReport], with addr2line: Addr2Line) -> [String: String] {
        ReportBuilder.resolve(&processes, with: addr2line)
    }

    /// Stacks stop at main (unless --show-below-main), suppressions take their groups, the totals
    /// are counted, groups merge by their final key, and only the shown kinds stay listed.
    func refine(_ processes: inout [ProcessReport], scans: [RunScan], suppressions: [Suppression]) {
        if !options.leaks.showBelowMain {
            let executables = Set(scans.compactMap { $0.process?.exe } + [options.binary].compactMap { $0 })
            BelowMain.truncate(&processes, executables: executables)
        }
        let rules = options.rules
        for i in processes.indices {
            ReportBuilder.suppress(&processes[i], suppressions)
            for g in processes[i].leaks { processes[i].totals[g.kind].add(Tally(blocks: g.blocks, bytes: g.bytes)) }
            processes[i].leaks = ReportBuilder.regroup(processes[i].leaks, options: options).filter { options.leaks.lists($0.kind) }
            for j in processes[i].badFrees.indices {
                var b = processes[i].badFrees[j]
                b.attributed = ReportBuilder.attribute(b.stack, rules: rules)
                b.allocAttributed = b.allocStack.map { ReportBuilder.attribute($0, rules: rules) }
                b.freeAttributed = b.freeStack.map { ReportBuilder.attribute($0, rules: rules) }
                processes[i].badFrees[j] = b
            }
            for m in processes[i].mappings.indices {
                processes[i].mappings[m].attributed = ReportBuilder.attribute(processes[i].mappings[m].stack, rules: rules)
            }
            for s in processes[i].segments.indices {
                processes[i].segments[s].attributed = ReportBuilder.attribute(processes[i].segments[s].stack, rules: rules)
            }
        }
    }
}
