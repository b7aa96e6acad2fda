// ResolveCommand.swift: `memdir resolve [DIR]`: the same groups with whole stacks resolved to
// `function file:line` by addr2line.

public struct ResolveCommand: Command {
    public static let name = "resolve"
    public static let summary = "Like list, with every stack resolved to function file:line by addr2line."
    public static let usage = "memdir resolve [DIR] [--binary PATH [--ignore-build-id]] [--addr2line PATH] [--color auto|always|never] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--show-below-main yes|no] [--default-suppressions yes|no] [--format table|folded|pprof] [--xml-file FILE] [--xml-fd N] [--sarif-file FILE] [--source-root DIR]"
    public static let discussion = "DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory."
    public static let options = ReportFlags.options + LeakFlags.options + FormatFlags.options
        + BinaryFlags.options(help: "Resolve the main executable's frames in PATH (e.g. an unstripped copy of the same build).") + [
        FormatFlags.listFormatOption, Addr2LineFlag.option,
    ]

    public var listing: LeakListing
    public var binary: BinaryFlags
    public var addr2line: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        listing = try LeakListing(a)
        binary = BinaryFlags(a)
        addr2line = Addr2LineFlag(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let tool = try addr2line.given()
        return try listing.run(console, resolve: true) { options in
            binary.apply(to: &options)
            if let tool { options.addr2line = tool }
        }
    }
}
