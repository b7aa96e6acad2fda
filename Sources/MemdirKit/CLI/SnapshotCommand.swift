// SnapshotCommand.swift: `memdir snapshot DIR -o FILE`: saves the grouped live set of a running
// (or finished) process, with the time, as JSON (schema memdir-snapshot/1), for `diff` and
// `report --html`.

public struct SnapshotCommand: Command {
    public static let name = "snapshot"
    public static let summary = "Save the grouped live set of a directory, with the time, for diff and report --html."
    public static let usage = "memdir snapshot [DIR|PID] [-o FILE] [--format json|pprof] [--by caller|frame|stack] [--wrapper NAME]... [--addr2line PATH]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory; the program may still
        be running. A PID names a running traced process (its run directory is found as watch finds it).
        Without -o the snapshot goes to stdout. FILE is written whole or not at all.
        """
    public static let options = [
        OptionSpec("-o", value: "FILE", help: "Write the snapshot to FILE (replaced atomically)."),
        FormatFlags.snapshotFormatOption,
        OptionSpec("--by", value: "caller|frame|stack", help: "Group as list does (default frame)."),
        OptionSpec("--wrapper", value: "NAME", repeatable: true, help: "Also treat function NAME (or prefix NAME*) as an allocation wrapper."),
        OptionSpec("--addr2line", value: "PATH", help: "With --format pprof: resolve with this addr2line (a path or a name on PATH); over MEMDIR_ADDR2LINE."),
    ]

    public var directory: String
    public var output: String?
    public var flags: ReportFlags
    public var pprof: Bool
    public var addr2line: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        directory = try a.onlyPositional(default: "./mem")
        output = a.value("-o")
        flags = try ReportFlags(a)
        pprof = try FormatFlags.snapshotFormat(a)
        addr2line = Addr2LineFlag(a)
        if addr2line.value != nil && !pprof { throw .usage("'--addr2line' needs '--format pprof' (a json snapshot is not resolved)") }
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        if pprof {
            return try FormatFlags.snapshotPprof(target: directory, output: output, rules: flags.rules, addr2line: addr2line, console: console)
        }
        let snapshot = try Snapshot.take(directory: FormatFlags.snapshotDirectory(directory), grouping: flags.grouping, rules: flags.rules)
        let text = snapshot.json()
        if let output { try Self.writeAtomically(text, to: output) } else { console.out(text) }
        return snapshot.problems.map { reportProblems($0, console: console) } ?? 0
    }

    /// Writes `text` to a temporary file beside `path`, then renames it into place.
    static func writeAtomically(_ text: String, to path: String) throws(MemdirError) {
        guard let failure = replaceFile(path, with: Array(text.utf8)) else { return }
        switch failure.step {
        case .open: throw .system(call: "open", path: failure.temporary, reason: errnoText(failure.errno))
        case .write: throw .system(call: "write", path: failure.temporary, reason: errnoText(failure.errno))
        case .sync, .rename: throw .system(call: "rename", path: path, reason: errnoText(failure.errno))
        }
    }
}
