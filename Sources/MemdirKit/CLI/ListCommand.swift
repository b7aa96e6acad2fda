// ListCommand.swift: `memdir list [DIR]`: leaks and bad frees per process, located as
// module+0xOFFSET, without running addr2line.

public struct ListCommand: Command {
    public static let name = "list"
    public static let summary = "List leaked blocks and bad frees recorded in a directory, by module offset."
    public static let usage = "memdir list [DIR] [--json] [--json-file FILE] [--by caller|frame|stack] [--wrapper NAME]... [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory. Function names are not
        resolved, so only the obj: (module) parts of suppressions can match; use resolve for the rest.
        """
    public static let options = ReportFlags.options + LeakFlags.options

    public var directory: String
    public var flags: ReportFlags
    public var leakFlags: LeakFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        let report = try ReportBuilder.build(directory: directory,
                                             options: ReportOptions(grouping: flags.grouping, rules: flags.rules, leaks: leaks))
        return emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile, to: console.out, console: console)
    }
}
