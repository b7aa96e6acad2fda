// ResolveCommand.swift: `memdir resolve [DIR]`: the same groups with whole stacks resolved to
// `function file:line` by addr2line.

public struct ResolveCommand: Command {
    public static let name = "resolve"
    public static let summary = "Like list, with every stack resolved to function file:line by addr2line."
    public static let usage = "memdir resolve [DIR] [--binary PATH [--ignore-build-id]] [--color auto|always|never] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--format table|folded]"
    public static let discussion = "DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory."
    public static let options = ReportFlags.options + LeakFlags.options
        + BinaryFlags.options(help: "Resolve the main executable's frames in PATH (e.g. an unstripped copy of the same build).") + [
        OptionSpec("--format", value: "table|folded", help: "folded: one 'frame;frame;frame bytes' line per stack, outermost first (flamegraph.pl, speedscope, inferno)."),
    ]

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var binary: BinaryFlags
    public var folded: Bool

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        binary = BinaryFlags(a)
        folded = try FoldedFormatter.parseFormat(a, json: flags.json)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        var options = ReportOptions(grouping: folded ? .stack : flags.grouping, rules: flags.rules, resolve: true, leaks: leaks)
        binary.apply(to: &options)
        let report = try ReportBuilder.build(directory: directory, options: options)
        if folded { console.out(FoldedFormatter().format(report)); return reportProblems(report, console: console) }
        return emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, palette: flags.palette(for: 1), to: console.out, console: console)
    }
}
