// RunCommand.swift: `memdir run PROGRAM ARGS...`: runs a program under libmemtrack.so in a fresh
// records directory, then prints the resolved report. The program's stdin/stdout/stderr are
// inherited; the report goes to stderr (JSON to a file or descriptor of its own) so the
// program's output stays usable in pipelines. Exit status: the program's (128+signal when killed), or the gate's
// (23, or N from --error-exitcode; 0 turns it off) when there are lost blocks of the
// --errors-for-leak-kinds kinds, bad frees, or an incomplete record.

public struct RunCommand: Command {
    public static let name = "run"
    public static let summary = "Run a program under libmemtrack.so and print the resolved report."
    public static let usage = "memdir run [--dir DIR] [--keep] [--trace-children yes|no] [--trace-children-skip PATTERNS] [--error-exitcode N] [--errors-for-leak-kinds KINDS] [--json-file FILE] [--json-fd N] [--by caller|frame|stack] [--binary PATH [--ignore-build-id]] [--addr2line PATH] [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--xml-file FILE] [--xml-fd N] [--sarif-file FILE] [--source-root DIR] [--color auto|always|never] [--] PROGRAM [ARGS...]"
    public static let discussion = """
        The report goes to stderr; the program's own stdout and stderr are left alone. For JSON, use --json-file FILE or
        --json-fd N (e.g. `3>&1 >/dev/null --json-fd 3 | jq`): --json alone would mix it with what the program prints.
        Records are kept in DIR (default: a new memdir-run-XXXXXX in $TMPDIR if set, else in /dev/shm, else in /tmp); a
        run that finds nothing removes the directory it made, unless --keep (memdir clean removes old ones). Only the
        program is traced, and whatever it execs in place; its child processes are not, unless --trace-children=yes.
        libmemtrack.so is looked for beside the memdir executable and in ../lib/memdir/ from it; MEMDIR_LIBRARY
        overrides that path. Exit status: 23 (or --error-exitcode N; 0 turns the gate off) when there are lost blocks
        of the --errors-for-leak-kinds kinds after suppressions, bad frees, or an incomplete record; otherwise the
        program's own.
        """
    public static let options = ReportFlags.options + LeakFlags.options + BinaryFlags.options() + FormatFlags.options + [
        Addr2LineFlag.option,
        OptionSpec("--dir", value: "DIR", help: "Write the records to DIR, which must be empty or not exist (kept)."),
        OptionSpec("--keep", help: "Keep the records directory even when the run found nothing."),
        OptionSpec("--trace-children", value: "yes|no", help: "Also trace the processes the program starts (default no: only the program, through its own execs)."),
        OptionSpec("--trace-children-skip", value: "PATTERNS", help: "With --trace-children=yes, do not trace children (nor their descendants) whose executable matches one of these comma-separated patterns (* and ?)."),
        OptionSpec("--json-fd", value: "N", help: "Write the JSON report (schema memdir-report/2) to open descriptor N."),
        OptionSpec("--error-exitcode", value: "N", help: "Exit with N (default 23; 0: off) when lost blocks, bad frees or an incomplete record are found."),
        OptionSpec("--errors-for-leak-kinds", value: "KINDS", help: "The kinds that fail the run: definite,indirect,possible,reachable,all,none (default definite,indirect)."),
    ]
    public static let stopsAtFirstPositional = true

    /// LSan's exit status for leaks.
    public static let defaultErrorExitCode: Int32 = 23
    public static let defaultErrorKinds: Set<LeakKind> = [.definitelyLost, .indirectlyLost]
    /// The name of the directories `run` makes, and the file that says memdir made one.
    public static let directoryPrefix = "memdir-run-"
    public static let madeByMarker = ".memdir-run"

    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var binary: BinaryFlags
    public var addr2lineFlag: Addr2LineFlag
    public var formats: FormatFlags
    public var directory: String?
    public var keep: Bool
    public var traceChildren: Bool
    public var traceChildrenSkip: String?
    /// Whether --trace-children or --trace-children-skip was given (no preset then).
    public var traceChildrenGiven: Bool
    public var jsonFD: Int32?
    /// 0: the gate is off.
    public var errorExitCode: Int32 = defaultErrorExitCode
    public var errorKinds: Set<LeakKind> = defaultErrorKinds
    public var program: [String]

    public init(_ a: ParsedArguments) throws(MemdirError) {
        flags = try ReportFlags(a)
        if flags.json {
            throw .usage("run --json would mix the report with the program's stdout; use --json-file FILE or --json-fd N")
        }
        leakFlags = try LeakFlags(a)
        binary = BinaryFlags(a)
        addr2lineFlag = Addr2LineFlag(a)
        formats = try FormatFlags(a)
        errorKinds = try LeakFlags.kinds(a, "--errors-for-leak-kinds") ?? Self.defaultErrorKinds
        directory = a.value("--dir")
        keep = a.flag("--keep")
        switch a.value("--trace-children") ?? "no" {
        case "yes": traceChildren = true
        case "no": traceChildren = false
        case let other: throw .usage("invalid value '\(other)' for '--trace-children' (expected yes or no)")
        }
        traceChildrenSkip = a.value("--trace-children-skip")
        traceChildrenGiven = a.value("--trace-children") != nil || traceChildrenSkip != nil
        if let skip = traceChildrenSkip, !traceChildren {
            throw .usage("--trace-children-skip=\(skip) needs --trace-children=yes (children are not traced by default)")
        }
        if let n = a.value("--json-fd") {
            guard let fd = Int32(n), fd >= 0 else { throw .usage("invalid value '\(n)' for '--json-fd' (expected an open descriptor number)") }
            jsonFD = fd
        }
        if let n = a.value("--error-exitcode") {
            guard let v = Int32(n), (0...255).contains(v) else {
                throw .usage("invalid value '\(n)' for '--error-exitcode' (expected 0 to 255)")
            }
            errorExitCode = v
        }
        guard !a.positionals.isEmpty else { throw .usage("missing PROGRAM to run") }
        program = a.positionals
    }

    /// MEMDIR_LIBRARY, else libmemtrack.so beside the real path of this executable (a build
    /// directory), else in ../lib/memdir/ from it (an installed PREFIX/bin/memdir).
    public static func findLibrary(environment: [String: String]) throws(MemdirError) -> String {
        if let override = environment["MEMDIR_LIBRARY"], !override.isEmpty {
            guard fileExists(override) else { throw .libraryNotFound(searched: [override]) }
            return absolute(override)
        }
        guard let exe = realPath("/proc/self/exe") else {
            throw .libraryNotFound(searched: ["/proc/self/exe"])
        }
        let bin = String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)])
        let candidates = [bin + "/libmemtrack.so", bin + "/../lib/memdir/libmemtrack.so"]
        guard let found = candidates.first(where: fileExists) else { throw .libraryNotFound(searched: candidates) }
        return absolute(found)
    }

    static func absolute(_ path: String) -> String {
        realPath(path) ?? path
    }

    /// Where `run` makes its directories: $TMPDIR, else /dev/shm (tmpfs: records cost no disk
    /// writes), else /tmp.
    public static func temporaryRoot() -> String {
        environmentValue("TMPDIR").flatMap { $0.isEmpty ? nil : $0 }
            ?? (directoryWritable("/dev/shm") == nil ? "/dev/shm" : "/tmp")
    }

    /// Creates the records directory: DIR (empty or new), or a fresh one under the temp dir,
    /// marked as memdir's so that `memdir clean` may remove it later.
    static func makeDirectory(_ requested: String?) throws(MemdirError) -> String {
        if let dir = requested {
            if fileExists(dir) {
                guard isDirectory(dir) else { throw .usage("--dir \(dir) is not a directory") }
                guard try listDirectory(dir).isEmpty else { throw .usage("--dir \(dir) must be empty or not exist") }
            } else if let code = MemdirKit.makeDirectory(dir, mode: 0o700) {
                throw .directoryUnreadable(path: dir, reason: errnoText(code))
            }
            return absolute(dir)
        }
        let tmp = temporaryRoot()
        let made = makeTemporaryDirectory(tmp + "/" + directoryPrefix + "XXXXXX")
        guard let template = made.path else {
            throw .directoryUnreadable(path: tmp, reason: errnoText(made.errno))
        }
        let dir = absolute(template)
        createExclusiveFile(dir + "/" + madeByMarker, mode: 0o600, text: "memdir run \(currentProcessID())\n")
        return dir
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        var environment = currentEnvironment()
        let library = try Self.findLibrary(environment: environment)
        // Bad suppressions, --json-file, --json-fd, --binary or --addr2line fail before the program runs.
        let leaks = try leakFlags.leakOptions()
        var jsonFile: JSONFile?
        if let fd = jsonFD {
            jsonFile = try JSONFile(descriptor: fd)
        } else if let path = leakFlags.jsonFile {
            jsonFile = try JSONFile(path)
        }
        if let path = binary.binary { _ = try BuildID.read(path: path) }
        let chosenAddr2line = try addr2lineFlag.given()
        let outputs = try formats.open()
        guard let found = findExecutable(program[0], path: environment["PATH"]) else {
            throw .programNotFound(program[0])
        }
        guard found.executable else {
            throw .programNotExecutable(path: found.path, reason: errnoText(Errno.accessDenied))
        }
        let dir = try Self.makeDirectory(directory)
        environment["MEM_DIR"] = dir
        environment["LD_PRELOAD"] = [library, environment["LD_PRELOAD"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        // The program is the process whose parent is memdir (children.c in the tracker).
        environment["MEM_TRACE_PARENT"] = String(currentProcessID())
        let swiftTest = traceChildrenGiven ? nil : SwiftTestPreset(program: program, path: Self.absolute(found.path))
        environment["MEM_TRACE_CHILDREN"] = traceChildren || swiftTest != nil ? "yes" : "no"
        environment["MEM_TRACE_CHILDREN_SKIP"] = swiftTest?.skipPatterns ?? traceChildrenSkip

        let status = try Self.spawnAndWait(path: found.path, argv: program, environment: environment)

        let addr2line = Addr2LineFlag.orFallback(chosenAddr2line, console, warning: "addr2line not found on PATH: locations are not resolved")
        var options = ReportOptions(grouping: flags.grouping, rules: flags.rules, resolve: addr2line != nil, addr2line: addr2line, leaks: leaks)
        binary.apply(to: &options)
        var report = try ReportPipeline(options).report(dir)
        let untracedExecs = report.removeProcessesReplacedByUntracedExec()
        var presetLine = ""
        if swiftTest != nil {
            let all = report.processes.count
            report.processes.removeAll { !SwiftTestPreset.isTestProcess($0.process?.exe ?? "") }
            presetLine = "memdir: swift test: reporting the \(countText(report.processes.count)) test process\(report.processes.count == 1 ? "" : "es"); "
                + "the toolchain's own \(countText(all - report.processes.count)) are traced but not reported (--trace-children=yes reports them)\n"
        }
        let emitted = outputs.finish(report, status: emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile,
                                                          palette: flags.palette(for: 2), to: console.err, console: console),
                                     console: console)
        console.err(presetLine.isEmpty ? tracedLine(report, untracedExecs: untracedExecs) : presetLine)
        let exitStatus = emitted == MemdirError.outputUnwritable(path: "", reason: "").exitStatus
            ? emitted   // --json-file failed
            : gate(report, programStatus: status, console: console)
        if keep || directory != nil || !report.isClean || report.problemCount > 0 {
            console.err("memdir: records kept in \(dir.printable)\n")
        } else {
            removeTree(dir)
        }
        return exitStatus
    }

    /// How many processes were traced, and how to trace more or fewer.
    func tracedLine(_ report: Report, untracedExecs: Int) -> String {
        let n = Set(report.processes.map { $0.process.map { String($0.pid) } ?? $0.name }).count
        var line = "memdir: traced \(countText(n)) process\(n == 1 ? "" : "es")"
        if !traceChildren {
            line += untracedExecs > 0
                ? "; \(countText(untracedExecs)) child\(untracedExecs == 1 ? "" : "ren") exec'd untraced programs (--trace-children=yes traces them)"
                : " (children are not traced: --trace-children=yes)"
        } else if n > 1 {
            line += " (--trace-children-skip=PATTERNS or --trace-children=no narrows it)"
        }
        return line + "\n"
    }

    /// The exit status: the gate's when it fails, else the program's. Says why, in one line each.
    func gate(_ report: Report, programStatus: Int32, console: Console) -> Int32 {
        guard errorExitCode != 0 else { return programStatus }
        let unclassified = report.totals[.notClassified]
        if unclassified.blocks > 0 {
            console.err("memdir: note: \(countText(unclassified.blocks)) block\(unclassified.blocks == 1 ? "" : "s") not classified "
                + "(\(report.processes.compactMap(\.unclassifiedReason).uniqued.joined(separator: "; ").printable)): not counted as lost\n")
        }
        guard report.gateFails(kinds: errorKinds) else { return programStatus }
        var why: [String] = []
        for kind in LeakKind.classified where errorKinds.contains(kind) && report.totals[kind].blocks > 0 {
            why.append("\(countText(report.totals[kind].blocks)) \(kind.words)")
        }
        if report.badFreeCount > 0 { why.append("\(countText(report.badFreeCount)) bad free\(report.badFreeCount == 1 ? "" : "s")") }
        if report.processes.contains(where: \.recordIncomplete) { why.append("record incomplete") }
        console.err("memdir: exit status \(errorExitCode): \(why.joined(separator: ", "))\n")
        return errorExitCode
    }

    /// The program, run to its end with an argv array (Subprocess.swift's `runProgram`): its
    /// status as a shell gives it.
    static func spawnAndWait(path: String, argv: [String], environment: [String: String]) throws(MemdirError) -> Int32 {
        try runProgram(path: path, argv: argv, environment: environment)
    }
}
