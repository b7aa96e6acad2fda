// CheckCommand.swift: `memdir check PID|DIR`: asks a running process for a leak check now,
// through its run directory: memdir creates `check-request`, the tracker's writer thread
// notices it on its next pass, classifies (the leak-check machinery, threads stopped only for
// the scan) and answers with `leak-check-SEQ`. memdir waits for the answer by polling the
// directory (bounded by --timeout), then prints what is lost at that moment. The process goes on.

public struct CheckCommand: Command {
    public static let name = "check"
    public static let summary = "Ask a running process for a leak check now and print what is lost at that moment."
    public static let usage = "memdir check PID|DIR [--timeout AGE] [--json] [--binary PATH] [--addr2line PATH] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]..."
    public static let discussion = """
        PID is a process running under libmemtrack.so; DIR is a MEM_DIR (every running process in it is asked)
        or one run directory. The tracker answers from its writer thread, so a process with MEM_SETTLE_MS=0
        cannot answer.
        """
    public static let options = ReportFlags.options
        + LeakFlags.options.filter { ["--show-leak-kinds", "--suppressions"].contains($0.name) } + [
        OptionSpec("--timeout", value: "AGE", help: "How long to wait for the answer (default 10s)."),
        OptionSpec("--binary", value: "PATH", help: "Resolve the main executable's frames in PATH (it must be the program that ran: same build-id)."),
        OptionSpec("--ignore-build-id", help: "Use --binary even when its build-id is not the one recorded."),
        Addr2LineFlag.option,
    ]

    public var target: String
    public var timeoutMs: Double
    public var binary: String?
    public var ignoreBuildID = false
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var addr2line: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        guard let target = a.positionals.first else { throw .usage("missing PID or DIR") }
        self.target = target
        timeoutMs = try a.value("--timeout").map { (t: String) throws(MemdirError) in try BlockAge.option(t, name: "--timeout") } ?? 10_000
        binary = a.value("--binary")
        ignoreBuildID = a.flag("--ignore-build-id")
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        addr2line = Addr2LineFlag(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let tool = try addr2line.given()
        let runs = try LiveTarget.runDirectories(target)
        let running = runs.filter { ProcessStats.readStatus($0)?.state == "running" }
        guard !running.isEmpty else {
            throw .processNotRunning(path: runs.count == 1 ? runs[0] : target, state: runs.count == 1 ? ProcessStats.readStatus(runs[0])?.state ?? "unknown" : "none running")
        }
        var answers: [(run: String, answer: CheckAnswer)] = []
        for run in running { answers.append((run, try Self.ask(run, timeoutMs: timeoutMs))) }
        // What is lost at that moment: the live set read after the answer, classified by it (blocks
        // allocated since are "not classified").
        var options = ReportOptions(grouping: flags.grouping, rules: flags.rules, resolve: true, binary: binary,
                                    leaks: try leakFlags.leakOptions())
        options.ignoreBuildID = ignoreBuildID
        if let tool { options.addr2line = tool }
        for (run, answer) in answers { options.leakCheckNames[baseName(run)] = baseName(answer.file) }
        var report = try ReportPipeline(options).report(running.count == 1 ? running[0] : target)
        report.processes = report.processes.filter { p in running.contains { baseName($0) == p.name } }
        console.out(flags.json ? CheckFormatter.json(answers, report: report) : CheckFormatter.text(answers, report: report, palette: flags.palette(for: 1)))
        return reportProblems(report, console: console)
    }

    /// The run directory, opened once without following a symbolic link, and checked to belong to
    /// the owner of the process it records: everything `ask` does goes through this descriptor.
    /// (Run as root, `memdir check` followed a symlink the target's owner had swapped in for its
    /// run directory, and unlinked, created and renamed files wherever it pointed.)
    static func openRunDirectory(_ run: String) throws(MemdirError) -> DirectoryHandle {
        let directory = try DirectoryHandle(noFollow: run)
        // The owner of the process the record names (its /proc entry), read through the descriptor.
        if let pid = ProcessStats.readProcess(directory.procPath)?.pid, let process = PathStatus("/proc/\(pid)"),
           process.owner != directory.owner {
            throw .directoryUnreadable(path: run, reason: "it belongs to uid \(directory.owner), not to uid \(process.owner), the owner of process \(pid); refused")
        }
        return directory
    }

    /// Writes the request and waits for a new `leak-check-*` file in `run`.
    static func ask(_ run: String, timeoutMs: Double) throws(MemdirError) -> CheckAnswer {
        let directory = try openRunDirectory(run)
        defer { withExtendedLifetime(directory) {} }   // `via` names its descriptor
        let via = directory.procPath   // reads go through the descriptor too
        let before = Set(try answerNames(directory, run))
        let request = Scanner.join(run, "check-request"), temporary = ".check-request.tmp"
        if let error = directory.createFile(temporary, text: "memtrack/1 check-request\n") {
            throw .system(call: "open", path: Scanner.join(run, temporary), reason: errnoText(error))
        }
        if let error = directory.rename(temporary, to: "check-request") {
            directory.remove(temporary)
            throw .system(call: "rename", path: request, reason: errnoText(error))
        }
        func withdraw() { directory.remove("check-request") }   // a later pass must not run a check nobody waits for

        let deadline = BlockAge.nowUnixMs() + Int(timeoutMs)
        var pause = 5.0   // ms; doubles up to 200 ms: the directory may hold a million files
        while true {
            // The tracker takes the request (unlinks it) before it answers: until then, no listing.
            if !directory.contains("check-request") {
                if let name = try answerNames(directory, run).filter({ !before.contains($0) }).sorted(by: { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }).last {
                    let path = Scanner.join(run, name)
                    guard case .success(let text) = readTextFile(Scanner.join(via, name), limit: LeakCheckParser.maximumSize) else { throw .malformedRecord(path: path, reason: "cannot read the answer") }
                    return try CheckAnswer.parse(text, path: path)
                }
            }
            if let state = ProcessStats.readStatus(via)?.state, state != "running" {
                withdraw()
                throw .processNotRunning(path: run, state: state)
            }
            // `running` stays in the status of a process killed by SIGKILL: ask the kernel too.
            if let pid = ProcessStats.readProcess(via)?.pid, processIsGone(Int32(clamping: pid)) {
                withdraw()
                throw .processNotRunning(path: run, state: "running, but process \(pid) is gone: killed by SIGKILL?")
            }
            if BlockAge.nowUnixMs() >= deadline {
                withdraw()
                throw .checkTimedOut(path: run, seconds: timeoutMs / 1000)
            }
            waitMilliseconds(Int32(pause))
            pause = min(pause * 2, 200)
        }
    }

    static func answerNames(_ directory: DirectoryHandle, _ run: String) throws(MemdirError) -> [String] {
        let dir = try DirectoryReader(at: directory.descriptor, ".", path: run)
        var names: [String] = []
        while let entry = dir.next() {
            // Block files start with "0x": skip them without making a String.
            guard entry.firstByte == UInt8(ascii: "l") else { continue }
            let name = entry.name
            if name.hasPrefix("leak-check-") { names.append(name) }
        }
        return names
    }
}
