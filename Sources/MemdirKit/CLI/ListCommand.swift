// ListCommand.swift: `memdir list [DIR]`: leaks and bad frees per process, located as
// module+0xOFFSET, without running addr2line.

public struct ListCommand: Command {
    public static let name = "list"
    public static let summary = "List leaked blocks and bad frees recorded in a directory, by module offset."
    public static let usage = "memdir list [DIR] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--older-than AGE] [--format table|folded|pprof] [--xml-file FILE] [--xml-fd N] [--sarif-file FILE] [--source-root DIR] [--color auto|always|never]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory. Function names are not
        resolved, so only the obj: (module) parts of suppressions can match; use resolve for the rest.
        """
    public static let options = ReportFlags.options + LeakFlags.options + FormatFlags.options + [
        FormatFlags.listFormatOption,
        OptionSpec("--older-than", value: "AGE", help: "Only blocks allocated at least AGE ago (30s, 500ms, 2m, 1h; a plain number is seconds)."),
    ]

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var olderThanMs: UInt64?
    public var folded: Bool
    public var formats: FormatFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        olderThanMs = try a.value("--older-than").map { (text: String) throws(MemdirError) in UInt64(try BlockAge.option(text, name: "--older-than")) }
        formats = try FormatFlags(a, json: flags.json)
        folded = formats.folded
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        let outputs = try formats.open()
        var options = ReportOptions(grouping: formats.wholeStacks ? .stack : flags.grouping, rules: flags.rules, leaks: leaks)
        options.olderThanMs = olderThanMs
        let report = try ReportBuilder.build(directory: directory, options: options)
        if formats.format == .pprof { return outputs.finish(report, status: formats.writePprof(report, console: console), console: console) }
        if folded { console.out(FoldedFormatter().format(report)); return outputs.finish(report, status: reportProblems(report, console: console), console: console) }
        return outputs.finish(report, status: emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, palette: flags.palette(for: 1), to: console.out, console: console), console: console)
    }
}
