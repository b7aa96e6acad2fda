// Version.swift: memdir's version, the one place it is written (the release script greps the
// `current` line), and the record and output formats this build reads and writes, for
// `memdir --version`.

public enum MemdirVersion {
    public static let current = "0.9.0"
    /// The date of this version, for the man page's title line.
    public static let date = "2026-12-07"

    /// What the tracker writes and memdir reads. The readers refuse other versions (status 6).
    public static let reads: [(format: String, what: String)] = [
        ("memtrack/\(supportedRecordVersion)", "process, status, modules, counters, leak-check, bad-free and shared-memory records"),
        ("block records 1 and 2", "0xADDRESS.mem files (version 1) and symlinks (version 2)"),
        ("memtrack/2 stacks, sources", "the stack and source-location tables of version 2 block records"),
        (Snapshot.schema, "snapshots (diff, report --snapshot)"),
        (WatchFormatter.schema, "watch --json histories (report --history)"),
    ]

    /// What memdir writes.
    public static let writes: [(format: String, what: String)] = [
        (JSONFormatter.schema, "--json and --json-file reports"),
        (Snapshot.schema, "snapshot"),
        (DiffFormatter.schema, "diff --json"),
        (StatsFormatter.schema, "stats --json"),
        (WatchFormatter.schema, "watch --json"),
        (CheckFormatter.schema, "check --json"),
    ]

    /// `memdir --version`: the first line alone is the version, as other tools print it.
    public static var text: String {
        func rows(_ list: [(format: String, what: String)]) -> String {
            let width = (list.map { $0.format.count }.max() ?? 0) + 2
            return list.map { "  " + $0.format + String(repeating: " ", count: width - $0.format.count) + $0.what }.joined(separator: "\n")
        }
        return "memdir \(current)\nreads:\n\(rows(reads))\nwrites:\n\(rows(writes))\n"
    }
}

/// `memdir version` (also `memdir --version`).
public struct VersionCommand: Command {
    public static let name = "version"
    public static let summary = "Print memdir's version and the record and report formats it reads and writes."
    public static let usage = "memdir version | memdir --version"
    public static let options: [OptionSpec] = []

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.isEmpty else { throw .usage("unexpected argument '\(a.positionals[0])'") }
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        console.out(MemdirVersion.text)
        return 0
    }
}
