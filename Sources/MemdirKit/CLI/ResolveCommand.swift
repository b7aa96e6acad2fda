// ResolveCommand.swift: `memdir resolve [DIR]`: the same groups with whole stacks resolved to
// `function file:line` by addr2line.

public struct ResolveCommand: Command {
    public static let name = "resolve"
    public static let summary = "Like list, with every stack resolved to function file:line by addr2line."
    public static let usage = "memdir resolve [DIR] [--binary PATH] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--format table|folded|pprof] [--xml-file FILE] [--xml-fd N] [--sarif-file FILE] [--source-root DIR]"
    public static let discussion = "DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory."
    public static let options = ReportFlags.options + LeakFlags.options + FormatFlags.options + [
        FormatFlags.listFormatOption,
        OptionSpec("--binary", value: "PATH", help: "Resolve the main executable's frames in PATH (e.g. an unstripped copy)."),
    ]

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var binary: String?
    public var folded: Bool
    public var formats: FormatFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        binary = a.value("--binary")
        formats = try FormatFlags(a, json: flags.json)
        folded = formats.folded
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        let outputs = try formats.open()
        let report = try ReportBuilder.build(
            directory: directory,
            options: ReportOptions(grouping: formats.wholeStacks ? .stack : flags.grouping, rules: flags.rules, resolve: true, binary: binary, leaks: leaks))
        if formats.format == .pprof { return outputs.finish(report, status: formats.writePprof(report, console: console), console: console) }
        if folded { console.out(FoldedFormatter().format(report)); return outputs.finish(report, status: reportProblems(report, console: console), console: console) }
        return outputs.finish(report, status: emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, to: console.out, console: console), console: console)
    }
}
