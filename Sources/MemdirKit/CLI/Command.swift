// Command.swift: what every subcommand is (name, one-line summary, options, run()), the
// streams they write to, and the options `list`, `resolve` and `run` share.

/// Where a command writes. The real tool writes to the process's stdout/stderr; tests capture.
public final class Console: @unchecked Sendable {
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.out = out
        self.err = err
    }

    /// The process's own stdout and stderr, written with write(2).
    public static var standard: Console {
        Console(out: { writeAll(1, $0) }, err: { writeAll(2, $0) })
    }

    public func error(_ message: String) { err("memdir: error: \(message.printable)\n") }
    public func warning(_ message: String) { err("memdir: warning: \(message)\n") }
}

public protocol Command {
    static var name: String { get }
    static var summary: String { get }
    static var usage: String { get }
    static var discussion: String { get }
    static var options: [OptionSpec] { get }
    static var stopsAtFirstPositional: Bool { get }
    init(_ arguments: ParsedArguments) throws(MemdirError)
    func run(_ console: Console) throws(MemdirError) -> Int32
}

extension Command {
    public static var stopsAtFirstPositional: Bool { false }
    public static var discussion: String { "" }

    public static var helpText: String {
        var text = "OVERVIEW: \(summary)\n\nUSAGE: \(usage)\n"
        if !discussion.isEmpty { text += "\n\(discussion)\n" }
        text += "\nOPTIONS:\n" + ArgumentParser.helpLines(options) + "\n"
        return text
    }
}

/// `--by`, `--wrapper`, `--json`: how a report is grouped and printed.
public struct ReportFlags: Sendable {
    public static let options: [OptionSpec] = [
        OptionSpec("--json", help: "Print the report as JSON (schema memdir-report/2)."),
        OptionSpec("--color", value: "auto|always|never", help: "Colour the text report: auto (default) on a terminal unless NO_COLOR is set."),
        OptionSpec("--by", value: "caller|frame|stack",
                   help: "Group leaks by the direct caller, the first frame outside allocation wrappers (default), or the whole stack."),
        OptionSpec("--wrapper", value: "NAME", repeatable: true,
                   help: "Also treat function NAME (or prefix NAME*) as an allocation wrapper."),
    ]

    public var json: Bool
    public var grouping: GroupingMode
    public var wrappers: [String]
    public var color: ColorChoice

    public init(_ a: ParsedArguments) throws(MemdirError) {
        json = a.flag("--json")
        let colorText = a.value("--color") ?? "auto"
        guard let color = ColorChoice(rawValue: colorText) else {
            throw .usage("invalid value '\(colorText)' for '--color' (expected auto, always or never)")
        }
        self.color = color
        let by = a.value("--by") ?? "frame"
        guard let mode = GroupingMode(rawValue: by) else {
            throw .usage("invalid value '\(by)' for '--by' (expected caller, frame or stack)")
        }
        grouping = mode
        wrappers = a.all("--wrapper")
    }

    public var rules: WrapperRules { WrapperRules(extraFunctions: wrappers) }

    /// The colours for text written to `fd`.
    public func palette(for fd: Int32) -> Palette {
        Palette.choose(color, fd: fd, environment: currentEnvironment())
    }
}

/// `--binary PATH` and `--ignore-build-id`: where the main executable's frames are resolved.
public struct BinaryFlags: Sendable {
    public static func options(help: String = "Resolve the main executable's frames in PATH (it must be the program that ran: same build-id).") -> [OptionSpec] {
        [
            OptionSpec("--binary", value: "PATH", help: help),
            OptionSpec("--ignore-build-id", help: "Use --binary even when its build-id is not the one recorded."),
        ]
    }

    public var binary: String?
    public var ignoreBuildID: Bool

    public init(_ a: ParsedArguments) {
        binary = a.value("--binary")
        ignoreBuildID = a.flag("--ignore-build-id")
    }

    /// Sets both on the report options.
    public func apply(to options: inout ReportOptions) {
        options.binary = binary
        options.ignoreBuildID = ignoreBuildID
    }
}

/// `--addr2line PATH`: the addr2line for every module, whatever its machine; over MEMDIR_ADDR2LINE.
public struct Addr2LineFlag: Sendable {
    public static let option = OptionSpec("--addr2line", value: "PATH",
        help: "Resolve with this addr2line (a path or a name on PATH), for every machine's modules; over MEMDIR_ADDR2LINE.")

    public var value: String?

    public init(_ a: ParsedArguments) { value = a.value("--addr2line") }

    /// The addr2line named, checked (status 18 when it names no executable); nil when not given.
    public func given() throws(MemdirError) -> Addr2Line? {
        try value.map { (v: String) throws(MemdirError) in try Addr2Line.locate(explicit: v) }
    }

    /// For the commands that go on unresolved without addr2line: `chosen` (what given() returned,
    /// checked before any work, so a bad `--addr2line` is an error), else MEMDIR_ADDR2LINE's or
    /// PATH's, else nil after `warning`.
    public static func orFallback(_ chosen: Addr2Line?, _ console: Console, warning: String) -> Addr2Line? {
        if let chosen { return chosen }
        do { return try Addr2Line.locate() } catch {
            console.warning(error == .addr2lineMissing ? warning : "\(error.description): locations are not resolved")
            return nil
        }
    }
}

/// Prints the record problems of every process once each (and how many more there were); the
/// status of the worst: unsupported version, then malformed, then unreadable.
func reportProblems(_ report: Report, console: Console) -> Int32 {
    guard let first = report.firstProblem else { return 0 }
    var shown = 0
    for p in report.processes {
        for problem in p.problems { console.error(problem.description); shown += 1 }
    }
    if report.problemCount > shown {
        console.error("\(report.problemCount - shown) more unreadable records not shown")
    }
    return first.exitStatus
}
