// ResolveCommand.swift: `memdir resolve [DIR]`: the same groups with whole stacks resolved to
// `function file:line` by addr2line.

public struct ResolveCommand: Command {
    public static let name = "resolve"
    public static let summary = "Like list, with every stack resolved to function file:line by addr2line."
    public static let usage = "memdir resolve [DIR] [--binary PATH [--ignore-build-id]] [--color auto|always|never] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--format table|folded|pprof] [--xml-file FILE] [--xml-fd N] [--sarif-file FILE] [--source-root DIR]"
    public static let discussion = "DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory."
    public static let options = ReportFlags.options + LeakFlags.options + FormatFlags.options
        + BinaryFlags.options(help: "Resolve the main executable's frames in PATH (e.g. an unstripped copy of the same build).") + [
        FormatFlags.listFormatOption,
    ]

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var binary: BinaryFlags
    public var folded: Bool
    public var formats: FormatFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        binary = BinaryFlags(a)
        formats = try FormatFlags(a, json: flags.json)
        folded = formats.folded
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        let outputs = try formats.open()
        var options = ReportOptions(grouping: formats.wholeStacks ? .stack : flags.grouping, rules: flags.rules, resolve: true, leaks: leaks)
        binary.apply(to: &options)
        let report = try ReportBuilder.build(directory: directory, options: options)
        if formats.format == .pprof { return outputs.finish(report, status: formats.writePprof(report, console: console), console: console) }
        if folded { console.out(FoldedFormatter().format(report)); return outputs.finish(report, status: reportProblems(report, console: console), console: console) }
        return outputs.finish(report, status: emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, palette: flags.palette(for: 1),
                                                   to: console.out, console: console), console: console)
    }
}
