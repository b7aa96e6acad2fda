// ReportBuilder.swift: the analysis steps of the report pipeline (ReportPipeline.swift names the
// order): the --binary check, what makes a record incomplete, suppression, symbolization through
// addr2line, attribution past allocation wrappers, and the final grouping and sort.

public enum ReportBuilder {
    /// The whole pipeline over `directory` (a MEM_DIR or one run directory): ReportPipeline.report.
    public static func build(directory: String, options: ReportOptions) throws(MemdirError) -> Report {
        try ReportPipeline(options).report(directory)
    }

    /// `--binary` must exist, and be the executable that ran when both have a build-id.
    static func checkBinary(_ binary: String, against module: ModuleLine?, ignoreBuildID: Bool) throws(MemdirError) {
        let found = try BuildID.read(path: binary)
        guard !ignoreBuildID, let recorded = module?.buildID, let found, found != recorded else { return }
        throw .binaryMismatch(path: binary, recorded: recorded, found: found, executable: module?.path ?? "the program")
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
                               + "\(status.unrecordedEvents) bad frees or other records not recorded")
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
    /// As LSan, a block an LSan `leak:` line suppresses is a root: the indirectly lost blocks of
    /// its clique (those whose leader chain leads to it) go with it. valgrind's entries match each
    /// group by its own stack only, as valgrind does.
    static func suppress(_ process: inout ProcessReport, _ suppressions: [Suppression]) {
        guard !suppressions.isEmpty else { return }
        var indexByKey: [GroupKey: Int] = [:]
        for (k, g) in process.leaks.enumerated() {
            indexByKey[GroupKey(frames: g.sample.stack, kind: g.kind, leader: g.leader)] = k
        }
        var decisions: [Int: Int?] = [:]   // group index -> the suppression that takes it
        func decide(_ k: Int, depth: Int) -> Int? {
            if let known = decisions[k] { return known }
            let g = process.leaks[k]
            var taken = SuppressionMatcher.match(suppressions, stack: MatchFrame.stack(g.stack, via: g.sample.via), kind: g.kind)
            if taken == nil, g.leader != 0, depth < 64, let key = process.leaderKeys[g.leader], let leaderGroup = indexByKey[key],
               leaderGroup != k, let i = decide(leaderGroup, depth: depth + 1), case .lsan = suppressions[i].pattern {
                taken = i
            }
            decisions[k] = .some(taken)
            return taken
        }
        var keep: [LeakGroup] = []
        for k in process.leaks.indices {
            let g = process.leaks[k]
            guard let i = decide(k, depth: 0) else { keep.append(g); continue }
            let tally = Tally(blocks: g.blocks, bytes: g.bytes)
            process.totals.suppressed.add(tally)
            process.suppressionUses[i, default: Tally()].add(tally)
        }
        process.leaks = keep
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
