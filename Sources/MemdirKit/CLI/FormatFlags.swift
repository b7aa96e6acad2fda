// FormatFlags.swift: the report formats other tools read, and their options: valgrind's XML
// (`--xml-file`, `--xml-fd`) and SARIF (`--sarif-file`, `--source-root`) on run, list and
// resolve; pprof (`--format pprof`) on list, resolve and snapshot. Files named on the command
// line are opened before any work (a bad path fails first, status 11), except `--xml-file`
// patterns with %p, whose names are known only with the report.

public struct FormatFlags: Sendable {
    public static let options: [OptionSpec] = [
        OptionSpec("--xml-file", value: "FILE", help: "Also write valgrind's XML (protocol 4) to FILE; with %p in FILE, one file per process (%p: its pid, %q{VAR}: $VAR, %%: %)."),
        OptionSpec("--xml-fd", value: "N", help: "Also write valgrind's XML (protocol 4) to the open file descriptor N."),
        OptionSpec("--sarif-file", value: "FILE", help: "Also write the report as SARIF 2.1.0 to FILE."),
        OptionSpec("--source-root", value: "DIR", help: "SARIF: source paths under DIR are written relative to it (default: the current directory)."),
    ]
    /// `--format` of list and resolve.
    public static let listFormatOption = OptionSpec("--format", value: "table|folded|pprof",
        help: "folded: one 'frame;frame;frame bytes' line per stack, outermost first (flamegraph.pl, speedscope, inferno); pprof: a gzip'd pprof heap profile on stdout (go tool pprof).")
    /// `--format` of snapshot.
    public static let snapshotFormatOption = OptionSpec("--format", value: "json|pprof",
        help: "json (default, schema memdir-snapshot/1, for diff and report --html) or pprof: a gzip'd heap profile, resolved when addr2line is found.")

    public enum ListFormat: Sendable { case table, folded, pprof }

    public var xmlFile: String?
    public var xmlFD: Int32?
    public var sarifFile: String?
    public var sourceRoot: String?
    public var format: ListFormat = .table
    /// `--gen-suppressions` (LeakFlags' option): the XML carries the entries too.
    public var suppressionEntries = false

    public init(_ a: ParsedArguments, json: Bool = false) throws(MemdirError) {
        xmlFile = a.value("--xml-file")
        sarifFile = a.value("--sarif-file")
        sourceRoot = a.value("--source-root")
        suppressionEntries = a.flag("--gen-suppressions")
        for (name, value) in [("--xml-file", xmlFile), ("--sarif-file", sarifFile), ("--source-root", sourceRoot)] where value == "" {
            throw .usage("invalid value '' for '\(name)'")
        }
        if let pattern = xmlFile { _ = try Self.expand(pattern, pid: "0") }
        if let n = a.value("--xml-fd") {
            guard let fd = Int32(n), fd >= 0 else { throw .usage("invalid value '\(n)' for '--xml-fd' (expected a file descriptor number)") }
            xmlFD = fd
        }
        switch a.value("--format") ?? "table" {
        case "table": format = .table
        case "folded": format = .folded
        case "pprof": format = .pprof
        case let other: throw .usage("invalid value '\(other)' for '--format' (expected table, folded or pprof)")
        }
        if format != .table && json { throw .usage("'--format \(a.value("--format")!)' and '--json' exclude each other") }
    }

    public var folded: Bool { format == .folded }
    /// folded and pprof list whole stacks.
    public var wholeStacks: Bool { format != .table }

    /// `--xml-file`'s name for one process: %p its pid, %q{VAR} the environment's VAR, %% a '%'.
    static func expand(_ pattern: String, pid: String) throws(MemdirError) -> String {
        var out = ""
        var i = pattern.startIndex
        while i < pattern.endIndex {
            let c = pattern[i]
            i = pattern.index(after: i)
            guard c == "%" else { out.append(c); continue }
            guard i < pattern.endIndex else { throw .usage("invalid value '\(pattern)' for '--xml-file' (a '%' ends it)") }
            let d = pattern[i]
            i = pattern.index(after: i)
            switch d {
            case "p": out += pid
            case "%": out += "%"
            case "q":
                guard i < pattern.endIndex, pattern[i] == "{", let close = pattern[i...].firstIndex(of: "}") else {
                    throw .usage("invalid value '\(pattern)' for '--xml-file' (%q needs {VAR})")
                }
                let name = String(pattern[pattern.index(after: i)..<close])
                out += environmentValue(name) ?? ""
                i = pattern.index(after: close)
            default: throw .usage("invalid value '\(pattern)' for '--xml-file' (unknown '%\(d)'; %p, %q{VAR} and %% are known)")
            }
        }
        return out
    }

    /// Opens what can be opened before the work (files without %p), checks the rest.
    public func open() throws(MemdirError) -> FormatOutputs {
        var outputs = FormatOutputs(flags: self)
        if let pattern = xmlFile {
            if pattern.contains("%p") {
                let dir = pattern.contains("/") ? String(pattern[..<pattern.lastIndex(of: "/")!]) : "."
                let expanded = try Self.expand(dir.isEmpty ? "/" : dir, pid: "0")
                if !dir.contains("%p"), let code = directoryWritable(expanded) { throw .outputUnwritable(path: pattern, reason: errnoText(code)) }
            } else {
                outputs.xml = try OutputFile(try Self.expand(pattern, pid: "0"))
            }
        }
        if let fd = xmlFD, let code = descriptorOpenError(fd) {
            throw .outputUnwritable(path: "--xml-fd \(fd)", reason: errnoText(code))
        }
        if let sarifFile { outputs.sarif = try OutputFile(sarifFile) }
        return outputs
    }

    /// SARIF's source root: `--source-root` made absolute, else the current directory.
    var absoluteSourceRoot: String {
        let cwd = currentDirectory() ?? "/"
        guard let root = sourceRoot else { return cwd }
        if let real = realPath(root) { return real }
        return root.hasPrefix("/") ? root : cwd + "/" + root
    }

    /// `--format pprof` of list and resolve: the profile on stdout.
    func writePprof(_ report: Report, console: Console) -> Int32 {
        let profile = PprofFormatter(timeNanos: Int64(BlockAge.nowUnixMs()) &* 1_000_000, comments: Self.pprofComments(report)).format(report)
        if let failure = OutputFile.writeBytes(1, profile) {
            console.error(MemdirError.outputUnwritable(path: "stdout", reason: errnoText(failure)).description)
            return MemdirError.outputUnwritable(path: "", reason: "").exitStatus
        }
        return reportProblems(report, console: console)
    }

    /// One comment per process: what it is, and its counters when it has them.
    static func pprofComments(_ report: Report) -> [String] {
        report.processes.map { p in
            var text = "memdir: process \(p.process.map { String($0.pid) } ?? p.name)" + (p.process.map { " \($0.exe)" } ?? "")
                + (p.status.map { " (\($0.summary))" } ?? "")
            if let c = try? CountersReader.read(runDirectory: p.directory) {
                text += "; allocations \(c.allocations), bytes requested \(c.bytesRequested), heap now \(c.heapCurrent), heap peak \(c.heapPeak), live blocks \(c.liveBlocks)"
            }
            return text
        }
    }

    /// `memdir snapshot [DIR|PID] --format pprof [-o FILE]`: the live set of every kind, by whole
    /// stack, resolved when addr2line is found.
    static func snapshotPprof(target: String, output: String?, rules: WrapperRules, addr2line flag: Addr2LineFlag,
                              console: Console) throws(MemdirError) -> Int32 {
        let chosen = try flag.given()
        let directory = try snapshotDirectory(target)
        let taken = BlockAge.nowUnixMs()
        let addr2line = Addr2LineFlag.orFallback(chosen, console, warning: "addr2line not found on PATH: the profile's locations are not resolved")
        let report = try ReportPipeline(ReportOptions(
            grouping: .stack, rules: rules, resolve: addr2line != nil, addr2line: addr2line,
            leaks: LeakOptions(shownKinds: Set(LeakKind.classified)))).report(directory)
        let profile = PprofFormatter(timeNanos: Int64(taken) &* 1_000_000, comments: pprofComments(report)).format(report)
        if let output {
            try OutputFile.writeAtomically(profile, to: output)
        } else if let failure = OutputFile.writeBytes(1, profile) {
            throw .outputUnwritable(path: "stdout", reason: errnoText(failure))
        }
        return reportProblems(report, console: console)
    }

    /// snapshot's DIR|PID: a number that is not a path is a traced process's pid.
    static func snapshotDirectory(_ target: String) throws(MemdirError) -> String {
        if !target.isEmpty, target.allSatisfy(\.isNumber), !fileExists(target) { return try LiveTarget.runDirectory(ofPid: target) }
        return target
    }
}

/// The files of one command's run.
public struct FormatOutputs {
    let flags: FormatFlags
    var xml: OutputFile?
    var sarif: OutputFile?

    /// Writes every requested format of `report`. `status` is the command's status so far; the
    /// result is 11 when a file could not be written (said once on stderr), else `status`.
    public func finish(_ report: Report, status: Int32, console: Console) -> Int32 {
        var failed: MemdirError?
        func note(_ e: MemdirError) { console.error(e.description); if failed == nil { failed = e } }
        let xmlFormatter = ValgrindXMLFormatter(commandLine: CommandLine.arguments, suppressionEntries: flags.suppressionEntries)
        if let pattern = flags.xmlFile {
            if let xml {
                do throws(MemdirError) { try xml.save(Array(xmlFormatter.document(report.processes, suppressions: report.suppressions).utf8)) } catch { note(error) }
            } else {
                // %p: one document per pid (the images a process exec'd share its pid, as in valgrind).
                var order: [String] = []
                var byPid: [String: [ProcessReport]] = [:]
                for p in report.processes {
                    let pid = p.process.map { String($0.pid) } ?? p.name
                    if byPid[pid] == nil { order.append(pid) }
                    byPid[pid, default: []].append(p)
                }
                for pid in order {
                    do throws(MemdirError) {
                        let file = try OutputFile(try FormatFlags.expand(pattern, pid: pid))
                        try file.save(Array(xmlFormatter.document(byPid[pid]!, suppressions: report.suppressions).utf8))
                    } catch { note(error) }
                }
            }
        }
        if let fd = flags.xmlFD, let code = OutputFile.writeBytes(fd, Array(xmlFormatter.document(report.processes, suppressions: report.suppressions).utf8)) {
            note(.outputUnwritable(path: "--xml-fd \(fd)", reason: errnoText(code)))
        }
        if let sarif {
            do throws(MemdirError) { try sarif.save(Array(SARIFFormatter(sourceRoot: flags.absoluteSourceRoot).format(report).utf8)) } catch { note(error) }
        }
        return failed?.exitStatus ?? status
    }
}

extension FormatFlags {
    /// snapshot's `--format json|pprof`: true for pprof.
    static func snapshotFormat(_ a: ParsedArguments) throws(MemdirError) -> Bool {
        switch a.value("--format") ?? "json" {
        case "json": return false
        case "pprof": return true
        case let other: throw .usage("invalid value '\(other)' for '--format' (expected json or pprof)")
        }
    }
}
