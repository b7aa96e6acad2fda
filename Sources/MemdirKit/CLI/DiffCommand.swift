// DiffCommand.swift: `memdir diff A B`: the groups that grew or shrank between two snapshots, or
// between a snapshot and a directory read now; sorted by growth, with resolved locations.

public struct DiffCommand: Command {
    public static let name = "diff"
    public static let summary = "Show which groups grew or shrank between two snapshots (or a snapshot and a directory now)."
    public static let usage = "memdir diff A B [--json] [--wrapper NAME]... [--addr2line PATH]"
    public static let discussion = """
        A and B are snapshot files (memdir snapshot) or directories, read now with A's grouping.
        Locations are resolved with addr2line when it is on PATH.
        """
    public static let options = [
        OptionSpec("--json", help: "Print JSON (schema memdir-diff/1)."),
        OptionSpec("--wrapper", value: "NAME", repeatable: true, help: "Also treat function NAME (or prefix NAME*) as an allocation wrapper."),
        Addr2LineFlag.option,
    ]

    public var first: String
    public var second: String
    public var json: Bool
    public var rules: WrapperRules
    public var addr2lineFlag: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count == 2 else {
            throw .usage(a.positionals.count < 2 ? "diff needs two snapshots (or a snapshot and a directory)" : "unexpected argument '\(a.positionals[2])'")
        }
        first = a.positionals[0]
        second = a.positionals[1]
        json = a.flag("--json")
        rules = WrapperRules(extraFunctions: a.all("--wrapper"))
        addr2lineFlag = Addr2LineFlag(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let chosen = try addr2lineFlag.given()
        let a: Snapshot, b: Snapshot
        do {
            a = try Snapshot.open(first, grouping: .frame, rules: rules)
            b = try Snapshot.open(second, grouping: a.grouping, rules: rules)
        } catch {
            throw FileKinds.explain(error, expected: FileKinds.snapshot, hint: FileKinds.snapshotHint)
        }
        let addr2line = Addr2LineFlag.orFallback(chosen, console, warning: "addr2line not found on PATH: locations are not resolved")
        let diff = SnapshotDiff.compare(a, b, addr2line: addr2line, rules: rules)
        console.out(json ? DiffFormatter.json(diff) : DiffFormatter.text(diff))
        return 0
    }
}
