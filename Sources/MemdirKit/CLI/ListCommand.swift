// ListCommand.swift: `memdir list [DIR]`: leaks and bad frees per process, located as
// module+0xOFFSET, without running addr2line.

public struct ListCommand: Command {
    public static let name = "list"
    public static let summary = "List leaked blocks and bad frees recorded in a directory, by module offset."
    public static let usage = "memdir list [DIR] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--older-than AGE] [--format table|folded]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory. Function names are not
        resolved, so only the obj: (module) parts of suppressions can match; use resolve for the rest.
        """
    public static let options = ReportFlags.options + LeakFlags.options + [
        OptionSpec("--older-than", value: "AGE", help: "Only blocks allocated at least AGE ago (30s, 500ms, 2m, 1h; a plain number is seconds)."),
        OptionSpec("--format", value: "table|folded", help: "folded: one 'frame;frame;frame bytes' line per stack, outermost first (flamegraph.pl, speedscope, inferno)."),
    ]

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var olderThanMs: UInt64?
    public var folded: Bool

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        olderThanMs = try a.value("--older-than").map { (text: String) throws(MemdirError) in UInt64(try BlockAge.option(text, name: "--older-than")) }
        folded = try FoldedFormatter.parseFormat(a, json: flags.json)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        var options = ReportOptions(grouping: folded ? .stack : flags.grouping, rules: flags.rules, leaks: leaks)
        options.olderThanMs = olderThanMs
        let report = try ReportBuilder.build(directory: directory, options: options)
        if folded { console.out(FoldedFormatter().format(report)); return reportProblems(report, console: console) }
        return emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, palette: flags.palette(for: 1), to: console.out, console: console)
    }
}
