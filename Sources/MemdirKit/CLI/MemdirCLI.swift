// MemdirCLI.swift: the tool's entry point: picks the subcommand, prints help generated from the
// commands' declarations, and turns a MemdirError into one `memdir: error:` line and its status.

public enum MemdirCLI {
    public static var commands: [any Command.Type] { [ListCommand.self, ResolveCommand.self, RunCommand.self, StatsCommand.self, SnapshotCommand.self, DiffCommand.self, WatchCommand.self, ReportCommand.self, CheckCommand.self, CleanCommand.self] }

    public static var helpText: String {
        let width = (commands.map { $0.name.count }.max() ?? 0) + 2
        return """
            OVERVIEW: memdir finds memory leaks and double frees in unmodified Linux programs.

            USAGE: memdir <subcommand> [options]

            SUBCOMMANDS:
            \(commands.map { "  " + $0.name + String(repeating: " ", count: width - $0.name.count) + $0.summary }.joined(separator: "\n"))

            See 'memdir <subcommand> --help' for details.

            """
    }

    /// Runs memdir with `arguments` (without argv[0]) and returns the exit status.
    public static func main(_ arguments: [String], console: Console) -> Int32 {
        guard let first = arguments.first else {
            console.err(helpText)
            return 2
        }
        if first == "--help" || first == "-h" || first == "help" {
            if first == "help", arguments.count > 1, let c = commands.first(where: { $0.name == arguments[1] }) {
                console.out(c.helpText)
            } else {
                console.out(helpText)
            }
            return 0
        }
        guard let command = commands.first(where: { $0.name == first }) else {
            console.error(first.hasPrefix("-") ? "unknown option '\(first)'" : "unknown subcommand '\(first)' (see memdir --help)")
            return 2
        }
        do {
            let parsed = try ArgumentParser.parse(Array(arguments.dropFirst()), options: command.options,
                                                  stopAtFirstPositional: command.stopsAtFirstPositional)
            if parsed.help {
                console.out(command.helpText)
                return 0
            }
            return try command.init(parsed).run(console)
        } catch {
            if case .usage = error {
                console.error("\(error.description) (see memdir \(command.name) --help)")
            } else {
                console.error(error.description)
            }
            return error.exitStatus
        }
    }
}
