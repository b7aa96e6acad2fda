// SARIFFormatter.swift: the report as SARIF 2.1.0 (OASIS), the format GitHub code scanning and
// most review bots read. One run whose tool is memdir, a rule per kind of finding, one result per
// loss record, bad free, mapping or segment. The primary location is the attributed frame (or,
// when it has no source, the first frame outward that has one), its path relative to
// `--source-root` through the SRCROOT base; the whole stack is a SARIF `stack`. The fingerprint
// hashes the rule and the functions of the attributed frame and its callers, not lines or
// addresses, so code scanning follows one leak across runs and edits.

public struct SARIFFormatter: OutputFormatter {
    public static let schemaURI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

    /// An absolute directory; source paths under it become relative to SRCROOT.
    public var sourceRoot: String

    public init(sourceRoot: String) {
        self.sourceRoot = sourceRoot.count > 1 && sourceRoot.hasSuffix("/") ? String(sourceRoot.dropLast()) : sourceRoot
    }

    public struct Rule: Sendable {
        public var id: String
        public var name: String
        public var short: String
        public var full: String
        public var level: String
    }

    public static let rules: [Rule] = [
        Rule(id: "definitely-lost", name: "DefinitelyLost", short: "Heap block definitely lost",
             full: "No pointer to the block, nor into it, was found in memory the program can reach: it can never be freed.", level: "error"),
        Rule(id: "indirectly-lost", name: "IndirectlyLost", short: "Heap block indirectly lost",
             full: "The block is reached only from lost blocks: it is lost with them.", level: "error"),
        Rule(id: "possibly-lost", name: "PossiblyLost", short: "Heap block possibly lost",
             full: "Only pointers into the middle of the block were found.", level: "warning"),
        Rule(id: "still-reachable", name: "StillReachable", short: "Heap block still reachable at exit",
             full: "A pointer to the block still exists at exit; it was never freed.", level: "note"),
        Rule(id: "not-classified", name: "NotClassified", short: "Heap block not classified",
             full: "The block was live, but no leak check classified it (the process was killed or is still running).", level: "note"),
        Rule(id: "double-free", name: "DoubleFree", short: "Block freed twice",
             full: "A block was freed again after it had been freed.", level: "error"),
        Rule(id: "invalid-free", name: "InvalidFree", short: "Free of a pointer never allocated",
             full: "free or delete was given a pointer that no allocation returned.", level: "error"),
        Rule(id: "mismatched-free", name: "MismatchedFree", short: "Mismatched allocation and deallocation",
             full: "The block was freed by a function of another family than the one that allocated it (malloc/free, new/delete, new[]/delete[]).", level: "error"),
        Rule(id: "mismatched-size", name: "MismatchedSize", short: "Sized delete given the wrong size",
             full: "A sized operator delete was given a size other than the block's.", level: "error"),
        Rule(id: "shared-memory-never-released", name: "SharedMemoryNeverReleased", short: "Shared memory never released",
             full: "A mapping was still mapped at exit, or a shared-memory segment outlived the process.", level: "warning"),
    ]

    static func ruleIndex(_ id: String) -> Int { rules.firstIndex { $0.id == id }! }

    static func ruleID(_ kind: LeakKind) -> String {
        switch kind {
        case .definitelyLost: "definitely-lost"
        case .indirectlyLost: "indirectly-lost"
        case .possiblyLost: "possibly-lost"
        case .stillReachable: "still-reachable"
        case .notClassified: "not-classified"
        }
    }

    public func format(_ report: Report) -> String { value(report).render() + "\n" }

    public func value(_ r: Report) -> JSONValue {
        var results: [JSONValue] = []
        for p in r.processes {
            let who = "process \(p.process.map { String($0.pid) } ?? p.name)" + (p.process.map { " \(baseName($0.exe))" } ?? "")
            for g in p.leaks {
                let id = Self.ruleID(g.kind)
                results.append(result(rule: id, message: "\(g.bytes) bytes in \(g.blocks) blocks are \(g.kind.words) (\(who))",
                                      stack: g.stack, attributed: g.attributed, stackName: "allocated at",
                                      properties: [("kind", .string(g.kind.jsonName)), ("bytes", .unsigned(g.bytes)), ("blocks", .number(Int64(g.blocks)))],
                                      process: p))
            }
            for b in p.badFrees {
                let rec = b.record
                var extra: [JSONValue] = []
                var related: [JSONValue] = []
                for (name, s, a) in [("first freed at", b.freeStack, b.freeAttributed), ("allocated at", b.allocStack, b.allocAttributed)] {
                    guard let s, let a, !s.isEmpty else { continue }
                    extra.append(stack(s, message: name))
                    if let loc = primary(s, a) {
                        related.append(location(s[loc.frame], symbol: loc.symbol, message: name, id: related.count + 1))
                    }
                }
                let size = rec.size.map { ", \($0) bytes" } ?? ""
                let family = (rec.freedSize.map { " of \($0) bytes" } ?? "") + (rec.family.map { ", \($0) block" } ?? "")
                results.append(result(rule: rec.kind, message: "\(rec.kind.replacing("-", with: " ")) of \(hex(rec.address)) (\(rec.via)\(family)\(size)) (\(who))",
                                      stack: b.stack, attributed: b.attributed, stackName: "freed at",
                                      properties: [("kind", .string(rec.kind)), ("address", .string(hex(rec.address))),
                                                   ("size", rec.size.map { .unsigned($0) } ?? .null),
                                                   ("family", rec.family.map { .string($0) } ?? .null),
                                                   ("freedSize", rec.freedSize.map { .unsigned($0) } ?? .null)],
                                      process: p, extraStacks: extra, related: related))
            }
            for m in p.mappings {
                let rec = m.record
                results.append(result(rule: "shared-memory-never-released",
                                      message: "\(rec.size) bytes mapped at \(hex(rec.address)) (\(rec.via), \(rec.kind)\(rec.shared ? " shared" : " private")) still mapped at exit (\(who))",
                                      stack: m.stack, attributed: m.attributed, stackName: "mapped at",
                                      properties: [("kind", .string("mapping")), ("bytes", .unsigned(rec.size))], process: p))
            }
            for s in p.segments {
                results.append(result(rule: "shared-memory-never-released",
                                      message: "\(SharedMemory.describe(s.record)) (\(s.record.via)) outlived the process; \(SharedMemory.existence(s.record)) (\(who))",
                                      stack: s.stack, attributed: s.attributed, stackName: "created at",
                                      properties: [("kind", .string("segment")), ("bytes", s.record.size.map { .unsigned($0) } ?? .null)], process: p))
            }
        }
        let totals = r.totals
        return .object([
            ("$schema", .string(Self.schemaURI)),
            ("version", .string("2.1.0")),
            ("runs", .array([.object([
                ("tool", .object([("driver", .object([
                    ("name", .string("memdir")),
                    ("rules", .array(Self.rules.map { rule in
                        .object([
                            ("id", .string(rule.id)), ("name", .string(rule.name)),
                            ("shortDescription", .object([("text", .string(rule.short))])),
                            ("fullDescription", .object([("text", .string(rule.full))])),
                            ("defaultConfiguration", .object([("level", .string(rule.level))])),
                            ("properties", .object([("tags", .array([.string("memory")]))])),
                        ])
                    })),
                ]))])),
                ("originalUriBaseIds", .object([("SRCROOT", .object([("uri", .string(Self.fileURI(sourceRoot, directory: true)))]))])),
                ("results", .array(results)),
                ("properties", .object([
                    ("memdirSchema", .string(JSONFormatter.schema)),
                    ("directory", .string(r.directory)),
                    ("leakedBlocks", .number(Int64(r.leakedBlocks))), ("leakedBytes", .unsigned(r.leakedBytes)),
                    ("badFrees", .number(Int64(r.badFreeCount))),
                    ("suppressedBlocks", .number(Int64(totals.suppressed.blocks))),
                    ("incomplete", .bool(r.isIncomplete)),
                ])),
            ])])),
        ])
    }

    func result(rule: String, message: String, stack frames: [Frame], attributed: Attribution, stackName: String,
                properties: [(String, JSONValue)], process p: ProcessReport,
                extraStacks: [JSONValue] = [], related: [JSONValue] = []) -> JSONValue {
        let index = Self.ruleIndex(rule)
        var fields: [(String, JSONValue)] = [
            ("ruleId", .string(rule)), ("ruleIndex", .number(Int64(index))), ("level", .string(Self.rules[index].level)),
            ("message", .object([("text", .string(message))])),
        ]
        if let loc = primary(frames, attributed) {
            fields.append(("locations", .array([location(frames[loc.frame], symbol: loc.symbol, message: nil, id: nil)])))
        }
        fields.append(("partialFingerprints", .object([("memdirStack/v1", .string(fingerprint(rule: rule, frames, attributed)))])))
        if !frames.isEmpty || !extraStacks.isEmpty {
            fields.append(("stacks", .array((frames.isEmpty ? [] : [stack(frames, message: stackName)]) + extraStacks)))
        }
        if !related.isEmpty { fields.append(("relatedLocations", .array(related))) }
        fields.append(("properties", .object(properties + [
            ("pid", p.process.map { .number(Int64($0.pid)) } ?? .null),
            ("runDirectory", .string(p.directory)),
        ])))
        return .object(fields)
    }

    /// The attributed frame when it has a source file, else the first frame outward with one,
    /// else the attributed frame (an address only).
    func primary(_ frames: [Frame], _ a: Attribution) -> Attribution? {
        guard !frames.isEmpty else { return nil }
        if a.symbol < frames[a.frame].symbols.count, frames[a.frame].symbols[a.symbol].file != nil { return a }
        for i in (a.frame + 1)..<max(a.frame + 1, frames.count) {
            if let j = frames[i].symbols.firstIndex(where: { $0.file != nil }) { return Attribution(frame: i, symbol: j) }
        }
        return a
    }

    func stack(_ frames: [Frame], message: String) -> JSONValue {
        var out: [JSONValue] = []
        for f in frames {
            for i in 0..<max(1, f.symbols.count) {
                var frame: [(String, JSONValue)] = [("location", location(f, symbol: i, message: nil, id: nil))]
                if let m = f.module { frame.append(("module", .string(m))) }
                out.append(.object(frame))
            }
        }
        return .object([("message", .object([("text", .string(message))])), ("frames", .array(out))])
    }

    func location(_ f: Frame, symbol i: Int, message: String?, id: Int?) -> JSONValue {
        let s: Symbol? = i < f.symbols.count ? f.symbols[i] : nil
        var physical: [(String, JSONValue)] = []
        if let file = s?.file {
            physical.append(("artifactLocation", artifact(file)))
            if let line = s?.line, line > 0 { physical.append(("region", .object([("startLine", .number(Int64(line)))]))) }
        } else {
            // No source: the address, named module+0xOFFSET (readers take that name as the place).
            physical.append(("address", .object([("absoluteAddress", .unsigned(f.address)), ("fullyQualifiedName", .string(f.moduleLocation))])))
        }
        var fields: [(String, JSONValue)] = []
        if let id { fields.append(("id", .number(Int64(id)))) }
        fields.append(("physicalLocation", .object(physical)))
        if let fn = s?.function {
            fields.append(("logicalLocations", .array([.object([("fullyQualifiedName", .string(fn)), ("kind", .string("function"))])])))
        }
        fields.append(("message", .object([("text", .string(message.map { "\($0) \(f.describe(symbol: i))" } ?? f.describe(symbol: i)))])))
        return .object(fields)
    }

    /// A path under the source root is relative to SRCROOT; other absolute paths are file URIs.
    func artifact(_ path: String) -> JSONValue {
        if path.hasPrefix("/") {
            let prefix = sourceRoot == "/" ? "/" : sourceRoot + "/"
            if path.hasPrefix(prefix) {
                return .object([("uri", .string(Self.percentEncoded(String(path.dropFirst(prefix.count))))), ("uriBaseId", .string("SRCROOT"))])
            }
            return .object([("uri", .string(Self.fileURI(path, directory: false)))])
        }
        // A relative path is relative to where its module was compiled: SRCROOT only when the
        // file is there (a system library's "./csu/libc-start.c" is not).
        var relative = Substring(path)
        while relative.hasPrefix("./") { relative = relative.dropFirst(2) }
        let uri = JSONValue.string(Self.percentEncoded(String(relative)))
        return fileExists(sourceRoot + "/" + relative) ? .object([("uri", uri), ("uriBaseId", .string("SRCROOT"))]) : .object([("uri", uri)])
    }

    static func fileURI(_ path: String, directory: Bool) -> String {
        "file://" + percentEncoded(path) + (directory && !path.hasSuffix("/") ? "/" : "")
    }

    /// RFC 3986: everything but unreserved characters and '/' is percent-encoded.
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let h = String(b, radix: 16, uppercase: true)
                out += "%" + (h.count == 1 ? "0" : "") + h
            }
        }
        return out
    }

    /// FNV-1a 64 of the rule and, from the attributed frame outward (at most five), each
    /// frame's function and file name, or its module and offset when it is not resolved.
    func fingerprint(rule: String, _ frames: [Frame], _ a: Attribution) -> String {
        var parts = [rule]
        if !frames.isEmpty {
            for (n, f) in frames[a.frame...].prefix(5).enumerated() {
                let start = n == 0 ? a.symbol : 0
                if f.symbols.isEmpty || start >= f.symbols.count { parts.append(f.moduleLocation); continue }
                for s in f.symbols[start...] {
                    parts.append((s.function ?? "?") + "@" + (s.file.map(baseName) ?? f.module.map(baseName) ?? "?"))
                }
            }
        }
        var h: UInt64 = 0xcbf29ce484222325
        for b in parts.joined(separator: "\n").utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        let text = String(h, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
