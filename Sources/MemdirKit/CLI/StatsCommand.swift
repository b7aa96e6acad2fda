// StatsCommand.swift: `memdir stats [DIR]`: the tracker's allocation statistics per process, as
// libmemusage prints them (calls per entry point, bytes, heap and its peak, a size histogram).

public struct StatsCommand: Command {
    public static let name = "stats"
    public static let summary = "Print allocation statistics (calls, bytes, heap peak, size histogram) per process."
    public static let usage = "memdir stats [DIR] [--json]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory. The numbers come
        from each run directory's `counters` file, which the tracker keeps up to date while the program runs.
        """
    public static let options = [OptionSpec("--json", help: "Print JSON (schema memdir-stats/1).")]

    public var directory: String
    public var json: Bool

    public init(_ a: ParsedArguments) throws(MemdirError) {
        directory = try a.onlyPositional(default: "./mem")
        json = a.flag("--json")
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let (stats, problems) = try ProcessStats.load(directory: directory)
        console.out(json ? StatsFormatter.json(stats, directory: directory) : StatsFormatter.text(stats))
        // The valid processes are printed first; each unreadable counters file is one error,
        // and the status is the worst of them (6 over 5), as `list` does for records.
        for problem in problems { console.error(problem.description) }
        let worst = problems.first { if case .unsupportedVersion = $0 { true } else { false } } ?? problems.first
        return worst?.exitStatus ?? 0
    }
}

/// One process's identity and counters.
public struct ProcessStats: Sendable {
    public var directory: String
    public var process: ProcessRecord?
    public var status: StatusRecord?
    public var counters: Counters

    /// Every run directory under `directory` that has a readable counters file, and the problems
    /// of those whose file is unreadable or malformed (one bad file hides no other process);
    /// throws `noCounters` when no run directory has one at all.
    public static func load(directory: String) throws(MemdirError) -> (stats: [ProcessStats], problems: [MemdirError]) {
        let runs = try Scanner.runDirectories(in: directory)
        var result: [ProcessStats] = []
        var problems: [MemdirError] = []
        var firstError: MemdirError?
        for run in runs {
            do throws(MemdirError) {
                let counters = try CountersReader.read(runDirectory: run)
                result.append(ProcessStats(directory: run, process: readProcess(run), status: readStatus(run), counters: counters))
            } catch {
                if case .noCounters = error { if firstError == nil { firstError = error }; continue }
                problems.append(error)
            }
        }
        if result.isEmpty && problems.isEmpty, let firstError { throw firstError }
        return (result, problems)
    }

    static func readProcess(_ run: String) -> ProcessRecord? {
        guard case .success(let text) = readTextFile(Scanner.join(run, "process"), limit: Scanner.RecordLimit.process) else { return nil }
        return try? RecordParser.parseProcess(text, path: run)
    }

    static func readStatus(_ run: String) -> StatusRecord? {
        guard case .success(let text) = readTextFile(Scanner.join(run, "status"), limit: Scanner.RecordLimit.status) else { return nil }
        return try? RecordParser.parseStatus(text, path: run)
    }

    public var title: String {
        let pid = process.map { String($0.pid) } ?? baseName(directory)
        let state = status.map { s in s.state == "exit" ? "exit \(s.code ?? 0)" : s.state == "signal" ? (s.signalName ?? "signal") : s.state } ?? "no status"
        return "process \(pid) \(process?.exe ?? "?") (\(state))"
    }
}
