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

    public var listing: LeakListing
    public var olderThanMs: UInt64?

    public init(_ a: ParsedArguments) throws(MemdirError) {
        listing = try LeakListing(a)
        olderThanMs = try a.value("--older-than").map { (text: String) throws(MemdirError) in UInt64(try BlockAge.option(text, name: "--older-than")) }
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        try listing.run(console, resolve: false) { $0.olderThanMs = olderThanMs }
    }
}

/// The body `list` and `resolve` share: the options both take, then the report pipeline and the
/// chosen format. They differ only in what they add to the pipeline's options (resolve: true and
/// `--binary`; list: `--older-than`).
public struct LeakListing: Sendable {
    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var formats: FormatFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        directory = try a.onlyPositional(default: "./mem")
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        formats = try FormatFlags(a, json: flags.json)
    }

    /// Reads the suppressions and opens the output files (a bad one fails before any work), runs
    /// the pipeline with the options `configure` completes, prints the report in its format
    /// (table or JSON, folded, pprof) and writes the other files asked for.
    func run(_ console: Console, resolve: Bool, configure: (inout ReportOptions) -> Void) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        let outputs = try formats.open()
        var options = ReportOptions(grouping: formats.wholeStacks ? .stack : flags.grouping, rules: flags.rules, resolve: resolve, leaks: leaks)
        configure(&options)
        let report = try ReportPipeline(options).report(directory)
        let status: Int32
        switch formats.format {
        case .pprof:
            status = formats.writePprof(report, console: console)
        case .folded:
            console.out(ReportPipeline.render(report, as: FoldedFormatter()))
            status = reportProblems(report, console: console)
        case .table:
            status = emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, palette: flags.palette(for: 1), to: console.out, console: console)
        }
        return outputs.finish(report, status: status, console: console)
    }
}
