// JSONFormatter.swift: the `--json` report, schema "memdir-report/2" (documented in the catalog's Output formats).
// Version 2 added leak kinds: per group, per process and in total, and suppressions.
// Keys keep a fixed order; addresses and offsets are "0x..." strings, counts are numbers.

public indirect enum JSONValue: Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Int64)
    case unsigned(UInt64)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.render() == b.render() }

    public func render(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1), end = String(repeating: "  ", count: indent)
        switch self {
        case .object(let pairs):
            if pairs.isEmpty { return "{}" }
            return "{\n" + pairs.map { "\(pad)\(JSONValue.quote($0.0)): \($0.1.render(indent: indent + 1))" }
                .joined(separator: ",\n") + "\n\(end)}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { pad + $0.render(indent: indent + 1) }.joined(separator: ",\n") + "\n\(end)]"
        case .string(let s): return JSONValue.quote(s)
        case .number(let n): return String(n)
        case .unsigned(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            // DEL and the C1 controls too: JSON allows them raw, a terminal acts on them.
            case _ where u.value < 0x20 || (0x7f...0x9f).contains(u.value): out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

public struct JSONFormatter: OutputFormatter {
    public static let schema = "memdir-report/2"
    public init() {}

    public func format(_ report: Report) -> String { value(report).render() + "\n" }

    public func value(_ r: Report) -> JSONValue {
        .object([
            ("schema", .string(Self.schema)),
            ("directory", .string(r.directory)),
            ("grouping", .string(r.grouping.rawValue)),
            ("resolved", .bool(r.resolved)),
            ("shown_kinds", .array(LeakKind.classified.filter(r.shownKinds.contains).map { .string($0.jsonName) })),
            ("summary", .object([
                ("processes", .number(Int64(r.processes.count))),
                ("leaked_blocks", .number(Int64(r.leakedBlocks))),
                ("leaked_bytes", .unsigned(r.leakedBytes)),
                ("bad_frees", .number(Int64(r.badFreeCount))),
                ("suppressed_bad_frees", .number(Int64(r.suppressedBadFreeCount))),
                ("mappings", .number(Int64(r.mappingCount))),
                ("segments", .number(Int64(r.segmentCount))),
                ("problems", .number(Int64(r.problemCount))),
                ("clean", .bool(r.isClean)),
                ("leak_kinds", kinds(r.totals)),
            ])),
            ("processes", .array(r.processes.map { process($0, suppressions: r.suppressions) })),
            ("suppressions", .array(uses(r.processes.map { ($0.suppressionUses, $0.badFreeSuppressionUses) }, r.suppressions))),
            ("resolve_failures", .array(r.resolveFailures.sorted { $0.key < $1.key }.map {
                .object([("module", .string($0.key)), ("message", .string($0.value))])
            })),
        ])
    }

    func opt(_ v: Int?) -> JSONValue { v.map { .number(Int64($0)) } ?? .null }
    func opt(_ v: String?) -> JSONValue { v.map { .string($0) } ?? .null }

    func process(_ p: ProcessReport, suppressions: [Suppression]) -> JSONValue {
        .object([
            ("run_directory", .string(p.directory)),
            ("pid", opt(p.process?.pid)),
            ("ppid", opt(p.process?.ppid)),
            ("parent", opt(p.process?.parent)),
            ("exe", opt(p.process?.exe)),
            ("args", .array((p.process?.args ?? []).map { .string($0) })),
            ("status", p.status.map(status) ?? .null),
            ("record_incomplete", .array(p.incompleteReasons.map { .string($0) })),   // why, when it is
            ("leak_check", .object([
                ("classified", .bool(p.classification.checkSeq != nil)),
                ("unclassified_reason", opt(p.unclassifiedReason)),
                ("notes", .array(p.classification.notes.map { .string($0) })),
            ])),
            ("leak_kinds", kinds(p.totals)),
            ("leaked_blocks", .number(Int64(p.leakedBlocks))),
            ("leaked_bytes", .unsigned(p.leakedBytes)),
            ("leaks", .array(p.leaks.map(leak))),
            ("suppressions", .array(uses([(p.suppressionUses, p.badFreeSuppressionUses)], suppressions))),
            ("bad_frees", .array(p.badFrees.map(badFree))),
            ("suppressed_bad_frees", .number(Int64(p.suppressedBadFrees))),
        ] + SharedMemory.json(p, stack: stack) + [
            ("problem_count", .number(Int64(p.problemCount))),
            ("problems", .array(p.problems.map { .object([("path", opt($0.path)), ("message", .string($0.description))]) })),
        ])
    }

    func status(_ s: StatusRecord) -> JSONValue {
        .object([
            ("state", .string(s.state)), ("code", opt(s.code)), ("signal", opt(s.signal)),
            ("signal_name", opt(s.signalName)), ("exec_path", opt(s.execPath)),
            ("complete", .bool(s.isComplete)),
            ("unrecorded_blocks", .number(Int64(s.unrecordedBlocks))),
            ("unremoved_records", .number(Int64(s.unremovedRecords))),
            ("unrecorded_events", .number(Int64(s.unrecordedEvents))),
            ("error", opt(s.error)),
        ])
    }

    /// `{"definitely_lost": {"blocks": N, "bytes": B}, ..., "suppressed": ..., "not_classified": ...}`
    func kinds(_ t: LeakTotals) -> JSONValue {
        func tally(_ x: Tally) -> JSONValue { .object([("blocks", .number(Int64(x.blocks))), ("bytes", .unsigned(x.bytes))]) }
        return .object(LeakKind.classified.map { ($0.jsonName, tally(t[$0])) }
                       + [("suppressed", tally(t.suppressed)), (LeakKind.notClassified.jsonName, tally(t[.notClassified]))])
    }

    /// Each suppression that took blocks or bad frees, in the order given, summed over `counts`.
    func uses(_ counts: [([Int: Tally], [Int: Int])], _ suppressions: [Suppression]) -> [JSONValue] {
        var tallies: [Int: Tally] = [:], frees: [Int: Int] = [:]
        for (t, f) in counts {
            for (i, x) in t { tallies[i, default: Tally()].add(x) }
            for (i, n) in f { frees[i, default: 0] += n }
        }
        return Set(tallies.keys).union(frees.keys).sorted().map {
            suppressionUse(suppressions[$0], tallies[$0] ?? Tally(), badFrees: frees[$0] ?? 0)
        }
    }

    func suppressionUse(_ s: Suppression, _ t: Tally, badFrees: Int) -> JSONValue {
        .object([("name", .string(s.name)), ("file", .string(s.file)), ("line", .number(Int64(s.line))),
                 ("blocks", .number(Int64(t.blocks))), ("bytes", .unsigned(t.bytes)),
                 ("bad_frees", .number(Int64(badFrees))), ("default", .bool(s.builtIn))])
    }

    func leak(_ g: LeakGroup) -> JSONValue {
        .object([
            ("kind", .string(g.kind.jsonName)),
            ("blocks", .number(Int64(g.blocks))),
            ("bytes", .unsigned(g.bytes)),
            ("location", .string(g.location)),
            ("attributed_frame", .number(Int64(g.attributed.frame))),
            ("sample", .object([
                ("address", .string(hex(g.sample.address))), ("size", .unsigned(g.sample.size)),
                ("seq", .unsigned(g.sample.seq)), ("thread", .unsigned(g.sample.thread)),
                ("ms", .unsigned(g.sample.ms)), ("via", .string(g.sample.via)),
                ("source", opt(g.sample.source)),
            ])),
            ("stack", stack(g.stack)),
        ])
    }

    func badFree(_ b: BadFree) -> JSONValue {
        .object([
            ("kind", .string(b.record.kind)),
            ("address", .string(hex(b.record.address))),
            ("seq", .unsigned(b.record.seq)),
            ("thread", .number(Int64(b.record.thread))),
            ("ms", .number(Int64(b.record.ms))),
            ("via", .string(b.record.via)),
            ("size", b.record.size.map { .unsigned($0) } ?? .null),
            ("file", .string(b.record.file)),
            ("location", .string(b.location)),
            ("stack", stack(b.stack)),
            ("alloc_location", opt(b.allocLocation)),
            ("alloc_stack", b.allocStack.map(stack) ?? .null),
            ("free_location", opt(b.freeLocation)),
            ("free_stack", b.freeStack.map(stack) ?? .null),
            ("family", opt(b.record.family)),
            ("freed_size", b.record.freedSize.map { .unsigned($0) } ?? .null),
        ])
    }

    func stack(_ frames: [Frame]) -> JSONValue {
        .array(frames.map { f in
            .object([
                ("address", .string(hex(f.address))),
                ("module", opt(f.module)),
                ("offset", f.offset.map { .string(hex($0)) } ?? .null),
                ("location", .string(f.moduleLocation)),
                ("symbols", .array(f.symbols.map { s in
                    .object([("function", opt(s.function)), ("file", opt(s.file)), ("line", opt(s.line))])
                })),
            ])
        })
    }
}

extension MemdirError {
    /// The file or directory the error is about, when there is one.
    public var path: String? {
        switch self {
        case .directoryUnreadable(let p, _), .noRecords(let p), .malformedRecord(let p, _),
             .unsupportedVersion(let p, _), .programNotExecutable(let p, _), .system(_, let p, _),
             .suppressionsUnreadable(let p, _), .malformedSuppressions(let p, _, _), .outputUnwritable(let p, _): p
        case .programNotFound(let p): p
        case .noCounters(let p), .processNotRunning(let p, _), .checkTimedOut(let p, _): p
        case .binaryUnreadable(let p, _), .binaryMismatch(let p, _, _, _): p
        case .wrongFileKind(let p, _, _, _): p
        case .addr2lineUnusable(let p, _, _): p
        case .usage, .addr2lineMissing, .libraryNotFound, .processNotTraced: nil
        }
    }
}
