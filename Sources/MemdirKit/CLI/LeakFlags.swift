// LeakFlags.swift: the options about leak kinds that `list`, `resolve` and `run` share
// (`--show-leak-kinds`, `--suppressions`, `--gen-suppressions`, `--json-file`), with valgrind's
// names and values, and the `--json-file` writer.

public struct LeakFlags: Sendable {
    public static let options: [OptionSpec] = [
        OptionSpec("--show-leak-kinds", value: "KINDS",
                   help: "List groups of these kinds: definite,indirect,possible,reachable,all,none (default definite,indirect,possible)."),
        OptionSpec("--suppressions", value: "FILE", repeatable: true,
                   help: "Suppress blocks matching FILE's entries (valgrind's Memcheck:Leak or LSan's leak: format)."),
        OptionSpec("--gen-suppressions", help: "Print a valgrind suppression entry after each listed group."),
        OptionSpec("--json-file", value: "FILE", help: "Also write the JSON report (schema memdir-report/2) to FILE."),
        OptionSpec("--show-below-main", value: "yes|no", help: "Show the frames below main (default no: stacks stop at main, as valgrind's)."),
        OptionSpec("--default-suppressions", value: "yes|no", help: "Apply the built-in suppressions of the toolchain's own leaks (default yes)."),
    ]

    public var shownKinds: Set<LeakKind>
    public var suppressionFiles: [String]
    public var generateSuppressions: Bool
    public var jsonFile: String?
    public var showBelowMain = false
    public var defaultSuppressions = true

    public init(_ a: ParsedArguments) throws(MemdirError) {
        shownKinds = try Self.kinds(a, "--show-leak-kinds") ?? LeakOptions.defaultShown
        suppressionFiles = a.all("--suppressions")
        generateSuppressions = a.flag("--gen-suppressions")
        jsonFile = a.value("--json-file")
        if jsonFile == "" { throw .usage("invalid value '' for '--json-file'") }
        showBelowMain = try Self.yesNo(a, "--show-below-main") ?? false
        defaultSuppressions = try Self.yesNo(a, "--default-suppressions") ?? true
    }

    /// valgrind's `yes|no` option, nil when not given.
    static func yesNo(_ a: ParsedArguments, _ name: String) throws(MemdirError) -> Bool? {
        guard let text = a.value(name) else { return nil }
        switch text {
        case "yes": return true
        case "no": return false
        default: throw .usage("invalid value '\(text)' for '\(name)' (expected yes or no)")
        }
    }

    /// A valgrind kind list option, nil when not given.
    static func kinds(_ a: ParsedArguments, _ name: String) throws(MemdirError) -> Set<LeakKind>? {
        guard let text = a.value(name) else { return nil }
        guard let set = LeakKind.parseSet(text) else {
            throw .usage("invalid value '\(text)' for '\(name)' (expected definite, indirect, possible, reachable, all or none, comma-separated)")
        }
        return set
    }

    /// Reads the suppression files (status 9 or 10 when one is bad); the user's come first, then
    /// the default ones unless `--default-suppressions=no`.
    public func leakOptions() throws(MemdirError) -> LeakOptions {
        var options = LeakOptions(shownKinds: shownKinds, suppressions: try SuppressionParser.load(suppressionFiles)
                                                          + (defaultSuppressions ? DefaultSuppressions.all : []))
        options.showBelowMain = showBelowMain
        return options
    }
}

/// `--json-file` (opened, created, truncated before any work, so a bad path fails first) or
/// `run --json-fd N` (checked to be open for writing before the program runs).
public struct JSONFile {
    public let path: String
    let fd: Int32
    let ownsDescriptor: Bool

    public init(_ path: String) throws(MemdirError) {
        self.path = path
        fd = try OutputFile(path).fd
        ownsDescriptor = true
    }

    public init(descriptor: Int32) throws(MemdirError) {
        path = "--json-fd \(descriptor)"
        switch descriptorMode(descriptor) {
        case .closed: throw .outputUnwritable(path: path, reason: "descriptor \(descriptor) is not open")
        case .readOnly: throw .outputUnwritable(path: path, reason: "descriptor \(descriptor) is open read-only")
        case .writable: break
        }
        fd = descriptor
        ownsDescriptor = false
    }

    /// Writes the report and closes the file (not a descriptor the caller gave).
    public func save(_ report: Report) throws(MemdirError) {
        defer { if ownsDescriptor { closeDescriptor(fd) } }
        if let failure = OutputFile.writeBytes(fd, Array(JSONFormatter().format(report).utf8)) {
            throw .outputUnwritable(path: path, reason: errnoText(failure))
        }
    }
}

/// Prints the report (and the JSON file); the status for record problems, or 11 when the JSON
/// file could not be written.
func emit(_ report: Report, flags: ReportFlags, leakFlags: LeakFlags, jsonFile: JSONFile?, palette: Palette,
          to write: (String) -> Void, console: Console) -> Int32 {
    let formatter: any OutputFormatter = flags.json ? JSONFormatter()
        : TableFormatter(suppressionEntries: leakFlags.generateSuppressions, palette: palette)
    write(ReportPipeline.render(report, as: formatter))
    let status = reportProblems(report, console: console)
    do throws(MemdirError) {
        try jsonFile?.save(report)
    } catch {
        console.error(error.description)
        return error.exitStatus
    }
    return status
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    var uniqued: [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
