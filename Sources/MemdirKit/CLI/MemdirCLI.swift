// MemdirCLI.swift: the tool's entry point: picks the subcommand, prints help generated from the
// commands' declarations, and turns a MemdirError into one `memdir: error:` line and its status.

public enum MemdirCLI {
    public static var commands: [any Command.Type] { [ListCommand.self, ResolveCommand.self, RunCommand.self, StatsCommand.self, SnapshotCommand.self, DiffCommand.self, WatchCommand.self, ReportCommand.self, CheckCommand.self, CleanCommand.self] }

    /// The work commands and the ones about memdir itself (help, version, completion): what
    /// help, the man page and completion list.
    public static var allCommands: [any Command.Type] { commands + [HelpCommand.self, VersionCommand.self, CompletionCommand.self] }

    public static var helpText: String {
        let width = (allCommands.map { $0.name.count }.max() ?? 0) + 2
        return """
            OVERVIEW: memdir finds memory leaks and double frees in unmodified Linux programs.

            USAGE: memdir <subcommand> [options]

            OPTIONS:
              -h, --help    Show help information.
              --version     Print the version and the formats memdir reads and writes.

            SUBCOMMANDS:
            \(allCommands.map { "  " + $0.name + String(repeating: " ", count: width - $0.name.count) + $0.summary }.joined(separator: "\n"))

            See 'memdir <subcommand> --help' for details.

            """
    }

    /// The executable's whole life: this process's arguments, its stdout and stderr, and its exit
    /// with the status `main` returns.
    public static func runAndExit() -> Never {
        exitProcess(main(Array(CommandLine.arguments.dropFirst()), console: .standard))
    }

    /// Runs memdir with `arguments` (without argv[0]) and returns the exit status.
    public static func main(_ arguments: [String], console: Console) -> Int32 {
        guard var first = arguments.first else {
            console.err(helpText)
            return 2
        }
        if first == "--help" || first == "-h" { first = HelpCommand.name }
        if first == "--version" { first = VersionCommand.name }
        guard let command = allCommands.first(where: { $0.name == first }) else {
            if first.hasPrefix("-") {
                console.error("unknown option '\(first)'" + Suggestion.didYouMean(first, among: ["--help", "--version"]) + " (see memdir --help)")
            } else {
                console.error("unknown subcommand '\(first)'" + Suggestion.didYouMean(first, among: allCommands.map { $0.name }) + " (see memdir --help)")
            }
            return 2
        }
        var positionals: [String] = []
        do {
            let parsed = try ArgumentParser.parse(Array(arguments.dropFirst()), options: command.options,
                                                  stopAtFirstPositional: command.stopsAtFirstPositional)
            positionals = parsed.positionals
            if parsed.help {
                console.out(command.helpText)
                return 0
            }
            return try command.init(parsed).run(console)
        } catch {
            if case .usage = error {
                console.error("\(error.description) (see memdir \(command.name) --help)")
            } else {
                console.error(error.description + RecordsHint.hint(for: error, command: command.name, positionals: positionals))
            }
            return error.exitStatus
        }
    }
}

/// `memdir help [SUBCOMMAND] [--man]`.
public struct HelpCommand: Command {
    public static let name = "help"
    public static let summary = "Show help for memdir or a subcommand, or print the man page."
    public static let usage = "memdir help [SUBCOMMAND] [--man]"
    public static let discussion = "With --man, the whole manual as a roff page (section 1): memdir help --man | man -l -"
    public static let options = [OptionSpec("--man", help: "Print the man page (roff) instead of the help text.")]

    public var subcommand: (any Command.Type)?
    public var man: Bool

    public init(_ a: ParsedArguments) throws(MemdirError) {
        man = a.flag("--man")
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        if let name = a.positionals.first {
            guard let c = MemdirCLI.allCommands.first(where: { $0.name == name }) else {
                throw .usage("unknown subcommand '\(name)'" + Suggestion.didYouMean(name, among: MemdirCLI.allCommands.map { $0.name }))
            }
            subcommand = c
        }
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        if man {
            console.out(ManPage.render(commands: MemdirCLI.allCommands))
        } else {
            console.out(subcommand?.helpText ?? MemdirCLI.helpText)
        }
        return 0
    }
}

/// What to do when a command that reads records finds no records directory: how to make one.
enum RecordsHint {
    static let readers: Set<String> = ["list", "resolve", "stats", "snapshot", "watch", "report", "check"]

    static func hint(for error: MemdirError, command: String, positionals: [String]) -> String {
        guard readers.contains(command) else { return "" }
        let directory: String
        switch error {
        case .noRecords(let path): directory = path
        case .directoryUnreadable(let path, _) where (positionals.isEmpty ? ["./mem"] : positionals).contains(path) && !fileExists(path):
            directory = path
        default: return ""
        }
        let library = (try? RunCommand.findLibrary(environment: currentEnvironment())) ?? "/path/to/libmemtrack.so"
        return "; record one with `LD_PRELOAD=\(library) MEM_DIR=\(directory) PROGRAM`, or run the program with `memdir run -- PROGRAM`"
    }
}
