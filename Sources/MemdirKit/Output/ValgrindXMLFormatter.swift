// ValgrindXMLFormatter.swift: the report as valgrind's XML, protocol version 4
// (valgrind's docs/internals/xml-output-protocol4.txt), in the element order and with the error
// kinds memcheck 3.19 writes, so that tools that read valgrind's XML (ValgrindCI,
// valgrind-codequality, Jenkins' valgrind plugin, Qt Creator, CLion) read memdir's findings.
// One document covers the processes it is given: `--xml-file` with `%p` writes one per process.
// Bad frees come before the FINISHED status (valgrind reports them as they happen), loss records
// after it (the leak check runs at exit). Blocks not classified and shared memory have no
// memcheck kind and are left out; SARIF and JSON carry them.

public struct ValgrindXMLFormatter {
    /// memdir's own command line, written as valgrind writes its own in `<vargv>`.
    public var commandLine: [String]
    /// `--gen-suppressions`: each loss record carries the suppression that would hide it.
    public var suppressionEntries: Bool

    public init(commandLine: [String] = [], suppressionEntries: Bool = false) {
        self.commandLine = commandLine
        self.suppressionEntries = suppressionEntries
    }

    /// valgrind's kind for each bad-free kind.
    public static func kind(ofBadFree kind: String) -> String {
        switch kind {
        case "mismatched-free": "MismatchedFree"
        case "mismatched-size": "MismatchedAllocateDeallocateSize"
        default: "InvalidFree"   // double-free, invalid-free
        }
    }

    /// valgrind's kind for a leak kind; nil for blocks not classified.
    public static func kind(ofLeak kind: LeakKind) -> String? {
        switch kind {
        case .definitelyLost: "Leak_DefinitelyLost"
        case .indirectlyLost: "Leak_IndirectlyLost"
        case .possiblyLost: "Leak_PossiblyLost"
        case .stillReachable: "Leak_StillReachable"
        case .notClassified: nil
        }
    }

    /// One document for `processes` (pid, ppid and args are the first one's).
    public func document(_ processes: [ProcessReport], suppressions: [Suppression]) -> String {
        var out = XMLWriter()
        let first = processes.first
        out.raw("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n")
        out.raw("<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n\n")
        out.raw("<preamble>\n")
        out.element("line", "memdir: leaks and bad frees recorded by libmemtrack.so, in valgrind's XML", indent: 1)
        let args = first?.process?.args ?? []
        let command = (args.isEmpty ? [first?.process?.exe ?? first?.name ?? "?"] : args).joined(separator: " ")
        out.element("line", "Command: \(command)", indent: 1)
        for p in processes {
            let unclassified = p.totals[.notClassified]
            if unclassified.blocks > 0 {
                out.element("line", "process \(p.process.map { String($0.pid) } ?? p.name): \(unclassified.blocks) blocks (\(unclassified.bytes) bytes) not classified"
                            + (p.unclassifiedReason.map { " (\($0))" } ?? "") + ": not listed", indent: 1)
            }
            if p.recordIncomplete { out.element("line", "process \(p.process.map { String($0.pid) } ?? p.name): the record is incomplete", indent: 1) }
        }
        out.raw("</preamble>\n\n")
        out.element("pid", first?.process.map { String($0.pid) } ?? "0")
        out.element("ppid", first?.process?.ppid.map(String.init) ?? "0")
        out.element("tool", "memcheck")
        out.raw("\n<args>\n  <vargv>\n")
        out.element("exe", commandLine.first ?? "memdir", indent: 2)
        for a in commandLine.dropFirst() { out.element("arg", a, indent: 2) }
        out.raw("  </vargv>\n  <argv>\n")
        out.element("exe", args.first ?? first?.process?.exe ?? "?", indent: 2)
        for a in args.dropFirst() { out.element("arg", a, indent: 2) }
        out.raw("  </argv>\n</args>\n\n")
        status(&out, "RUNNING", ms: 0)

        var unique: UInt64 = 0
        var counts: [(unique: UInt64, count: Int)] = []
        var lastMs: UInt64 = 0
        let entries = processes.map { EntryFrames(runDirectory: $0.directory) }
        for (i, p) in processes.enumerated() {
            let tidOf = { (thread: Int) in p.process.map { $0.pid == thread ? 1 : thread } ?? thread }
            for (b, count) in Self.distinct(p.badFrees) {
                let entry = entries[i]?.frame(via: b.record.via, sized: b.record.kind == "mismatched-size")
                badFree(&out, b, unique: unique, tid: tidOf(b.record.thread), entry: entry)
                counts.append((unique, count))
                unique += 1
                lastMs = max(lastMs, UInt64(max(0, b.record.ms)))
            }
            lastMs = max(lastMs, p.leaks.map(\.sample.ms).max() ?? 0)
        }
        out.raw("\n")
        if processes.contains(where: { $0.status?.state != "running" }) { status(&out, "FINISHED", ms: lastMs) }

        for (i, p) in processes.enumerated() {
            let records = p.leaks.filter { Self.kind(ofLeak: $0.kind) != nil }
            for (n, g) in records.enumerated() {
                let tid = p.process.map { UInt64($0.pid) == g.sample.thread ? 1 : Int(g.sample.thread) } ?? Int(g.sample.thread)
                leak(&out, g, number: n + 1, of: records.count, unique: unique, tid: tid,
                     entry: entries[i]?.frame(via: g.sample.via, sized: false))
                unique += 1
            }
        }

        out.raw("<errorcounts>\n")
        for c in counts {
            out.raw("  <pair>\n")
            out.element("count", String(c.count), indent: 2)
            out.element("unique", Self.hexUpper(c.unique), indent: 2)
            out.raw("  </pair>\n")
        }
        out.raw("</errorcounts>\n\n<suppcounts>\n")
        var used: [Int: Tally] = [:]
        for p in processes { for (i, t) in p.suppressionUses { used[i, default: Tally()].add(t) } }
        for i in used.keys.sorted() where i < suppressions.count {
            out.raw("  <pair>\n")
            out.element("count", String(used[i]!.blocks), indent: 2)
            out.element("name", suppressions[i].name, indent: 2)
            out.raw("  </pair>\n")
        }
        out.raw("</suppcounts>\n\n</valgrindoutput>\n\n")
        return out.text
    }

    /// Bad frees of one kind at one stack are one error that occurred N times, as in valgrind.
    static func distinct(_ badFrees: [BadFree]) -> [(BadFree, Int)] {
        var order: [[UInt64]] = []
        var found: [[UInt64]: (BadFree, Int)] = [:]
        for b in badFrees {
            let key = [UInt64(kindCode(b.record.kind))] + b.stack.map(\.address)
            if let seen = found[key] { found[key] = (seen.0, seen.1 + 1) } else { found[key] = (b, 1); order.append(key) }
        }
        return order.map { found[$0]! }
    }

    private static func kindCode(_ kind: String) -> Int {
        ["double-free", "invalid-free", "mismatched-free", "mismatched-size"].firstIndex(of: kind) ?? 4
    }

    func status(_ out: inout XMLWriter, _ state: String, ms: UInt64) {
        out.raw("<status>\n")
        out.element("state", state, indent: 1)
        // valgrind's elapsed time, dd:hh:mm:ss.mmm (here: since the process started, as recorded).
        let s = ms / 1000
        out.element("time", "\(Self.two(s / 86400)):\(Self.two(s / 3600 % 24)):\(Self.two(s / 60 % 60)):\(Self.two(s % 60)).\(Self.three(ms % 1000)) ", indent: 1)
        out.raw("</status>\n\n")
    }

    static func two(_ n: UInt64) -> String { n < 10 ? "0\(n)" : "\(n)" }
    static func three(_ n: UInt64) -> String { n < 10 ? "00\(n)" : n < 100 ? "0\(n)" : "\(n)" }
    static func hexUpper(_ n: UInt64) -> String { "0x" + String(n, radix: 16, uppercase: true) }

    func leak(_ out: inout XMLWriter, _ g: LeakGroup, number: Int, of total: Int, unique: UInt64, tid: Int, entry: EntryFrames.Frame?) {
        out.raw("<error>\n")
        out.element("unique", Self.hexUpper(unique), indent: 1)
        out.element("tid", String(tid), indent: 1)
        out.element("kind", Self.kind(ofLeak: g.kind)!, indent: 1)
        out.raw("  <xwhat>\n")
        out.element("text", "\(Self.grouped(g.bytes)) bytes in \(Self.grouped(UInt64(g.blocks))) blocks are \(g.kind.words) in loss record \(Self.grouped(UInt64(number))) of \(Self.grouped(UInt64(total)))", indent: 2)
        out.element("leakedbytes", String(g.bytes), indent: 2)
        out.element("leakedblocks", String(g.blocks), indent: 2)
        out.raw("  </xwhat>\n")
        stack(&out, g.stack, entry: entry)
        if suppressionEntries { suppression(&out, SuppressionWriter.entry(for: g)) }
        out.raw("</error>\n\n")
    }

    func badFree(_ out: inout XMLWriter, _ b: BadFree, unique: UInt64, tid: Int, entry: EntryFrames.Frame?) {
        let r = b.record
        let address = hex(r.address)
        let size = r.size.map { " of size \(Self.grouped($0))" } ?? ""
        out.raw("<error>\n")
        out.element("unique", Self.hexUpper(unique), indent: 1)
        out.element("tid", String(tid), indent: 1)
        out.element("kind", Self.kind(ofBadFree: r.kind), indent: 1)
        switch r.kind {
        case "mismatched-free": out.element("what", "Mismatched free() / delete / delete []", indent: 1)
        case "mismatched-size": out.element("what", "Mismatched new/delete size value: \(r.freedSize.map(String.init) ?? "?")", indent: 1)
        default: out.element("what", "Invalid free() / delete / delete[] / realloc()", indent: 1)
        }
        stack(&out, b.stack, entry: entry)
        switch r.kind {
        case "double-free":
            out.element("auxwhat", "Address \(address) is 0 bytes inside a block\(size) free'd", indent: 1)
            if let s = b.freeStack, !s.isEmpty { stack(&out, s) }
            if let s = b.allocStack, !s.isEmpty {
                out.element("auxwhat", "Block was alloc'd at", indent: 1)
                stack(&out, s)
            }
        case "mismatched-free", "mismatched-size":
            out.element("auxwhat", "Address \(address) is 0 bytes inside a block\(size) alloc'd", indent: 1)
            if let s = b.allocStack, !s.isEmpty { stack(&out, s) }
        default:
            out.element("auxwhat", "Address \(address) is not stack'd, malloc'd or (recently) free'd", indent: 1)
        }
        out.raw("</error>\n\n")
    }

    /// A frame per inlined function (innermost first), all with the frame's address, as valgrind
    /// writes them; `<dir>` and `<file>` split the source path, `<dir>` only with a line. `entry`,
    /// the tracker's function the program called, comes first, as memcheck's own does.
    func stack(_ out: inout XMLWriter, _ frames: [Frame], entry: EntryFrames.Frame? = nil) {
        out.raw("  <stack>\n")
        if let entry {
            out.raw("    <frame>\n")
            out.element("ip", Self.hexUpper(entry.ip), indent: 3)
            out.element("obj", entry.obj, indent: 3)
            out.element("fn", entry.fn, indent: 3)
            out.raw("    </frame>\n")
        }
        for f in frames {
            let symbols: [Symbol?] = f.symbols.isEmpty ? [nil] : f.symbols
            for s in symbols {
                out.raw("    <frame>\n")
                out.element("ip", Self.hexUpper(f.address), indent: 3)
                if let m = f.module { out.element("obj", m, indent: 3) }
                if let fn = s?.function { out.element("fn", fn, indent: 3) }
                if let file = s?.file {
                    if let line = s?.line, let slash = file.lastIndex(of: "/") {
                        out.element("dir", slash == file.startIndex ? "/" : String(file[..<slash]), indent: 3)
                        out.element("file", String(file[file.index(after: slash)...]), indent: 3)
                        out.element("line", String(line), indent: 3)
                    } else {
                        out.element("file", file, indent: 3)
                        if let line = s?.line { out.element("line", String(line), indent: 3) }
                    }
                }
                out.raw("    </frame>\n")
            }
        }
        out.raw("  </stack>\n")
    }

    /// A suppression entry as valgrind's XML gives it: its parts, then the whole text.
    func suppression(_ out: inout XMLWriter, _ entry: String) {
        let lines = entry.split(separator: "\n").map { String($0.drop { $0 == " " }) }
        guard lines.count >= 4, lines.first == "{", lines.last == "}" else { return }
        out.raw("  <suppression>\n")
        out.element("sname", String(lines[1].filter { $0 != "<" && $0 != ">" }), indent: 2)
        out.element("skind", lines[2], indent: 2)
        for line in lines[3..<(lines.count - 1)] {
            if line.hasPrefix("fun:") || line.hasPrefix("obj:") {
                let tag = String(line.prefix(3))
                out.raw("    <sframe> <\(tag)>" + XMLWriter.escape(String(line.dropFirst(4))) + "</\(tag)> </sframe>\n")
            } else {
                out.element("skaux", line, indent: 2)
            }
        }
        out.raw("    <rawtext>\n<![CDATA[\n" + entry.split(separator: "]]>", omittingEmptySubsequences: false).joined(separator: "]]]]><![CDATA[>") + "]]>\n    </rawtext>\n  </suppression>\n")
    }

    /// valgrind's numbers in text: thousands separated by commas.
    static func grouped(_ n: UInt64) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }
}

/// The tracker's entry points in one process (libmemtrack.so's load address from `modules`,
/// the functions' values from its `.dynsym`): the frame on top of each primary stack, where
/// memcheck puts its own malloc or free. Without them a stack can be one frame long, which some
/// readers of valgrind's XML do not expect.
struct EntryFrames {
    struct Frame { var ip: UInt64; var obj: String; var fn: String }

    /// `via` -> (symbol, the name valgrind shows).
    static let functions: [String: (symbol: String, name: String)] = {
        var table: [String: (String, String)] = [:]
        for c in ["malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc", "free", "cfree"] {
            table[c] = (c, c)
        }
        table["new"] = ("_Znwm", "operator new(unsigned long)")
        table["new[]"] = ("_Znam", "operator new[](unsigned long)")
        table["new-aligned"] = ("_ZnwmSt11align_val_t", "operator new(unsigned long, std::align_val_t)")
        table["new[]-aligned"] = ("_ZnamSt11align_val_t", "operator new[](unsigned long, std::align_val_t)")
        table["delete"] = ("_ZdlPv", "operator delete(void*)")
        table["delete-sized"] = ("_ZdlPvm", "operator delete(void*, unsigned long)")
        table["delete[]"] = ("_ZdaPv", "operator delete[](void*)")
        return table
    }()

    let library: String
    let base: UInt64
    let values: [String: UInt64]

    init?(runDirectory: String) {
        guard case .success(let text) = readTextFile(Scanner.join(runDirectory, "modules"), limit: Scanner.RecordLimit.modules),
              let lines = try? RecordParser.parseModules(text, path: runDirectory),
              let line = lines.first(where: { baseName($0.path) == "libmemtrack.so" }) else { return nil }
        library = line.path
        base = line.base
        values = DynamicSymbols.read(path: line.path, names: Set(Self.functions.values.map(\.symbol)))
    }

    func frame(via: String, sized: Bool) -> Frame? {
        guard let f = Self.functions[sized && via == "delete" ? "delete-sized" : via], let value = values[f.symbol] else { return nil }
        return Frame(ip: base &+ value, obj: library, fn: f.name)
    }
}

/// Text with XML elements; text is escaped, characters XML 1.0 forbids become '?'.
struct XMLWriter {
    var text = ""

    mutating func raw(_ s: String) { text += s }

    mutating func element(_ name: String, _ value: String, indent: Int = 0) {
        text += String(repeating: "  ", count: indent) + "<\(name)>" + Self.escape(value) + "</\(name)>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            case _ where u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF: out += "?"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
