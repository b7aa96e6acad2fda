// ListCommand.swift: `memdir list [DIR]`: leaks and bad frees per process, located as
// module+0xOFFSET, without running addr2line.

public struct ListCommand: Command {
    public static let name = "list"
    public static let summary = "List leaked blocks and bad frees recorded in a directory, by module offset."
    public static let usage = "memdir list [DIR] [--json] [--by caller|frame|stack] [--wrapper NAME]..."
    public static let discussion = "DIR (default ./mem) is a MEM_DIR holding run directories, or one run directory."
    public static let options = ReportFlags.options

    public var directory: String
    public var flags: ReportFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        directory = a.positionals.first ?? "./mem"
        flags = try ReportFlags(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let report = try ReportBuilder.build(directory: directory,
                                             options: ReportOptions(grouping: flags.grouping, rules: flags.rules))
        return emit(report, json: flags.json, to: console.out, console: console)
    }
}
