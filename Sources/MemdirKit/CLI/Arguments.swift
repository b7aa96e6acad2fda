// Arguments.swift: a small hand-made option parser in swift-argument-parser's shape (no packages):
// each command declares OptionSpecs, the parser turns argv into ParsedArguments, help text is
// generated from the same declarations.

public struct OptionSpec: Sendable {
    /// Long name with dashes, e.g. "--json".
    public var name: String
    /// Value placeholder ("DIR"); nil for a flag.
    public var value: String?
    public var help: String
    public var repeatable: Bool

    public init(_ name: String, value: String? = nil, repeatable: Bool = false, help: String) {
        self.name = name
        self.value = value
        self.help = help
        self.repeatable = repeatable
    }
}

public struct ParsedArguments: Sendable {
    public var flags: Set<String> = []
    public var values: [String: [String]] = [:]
    public var positionals: [String] = []
    public var help = false

    public func flag(_ name: String) -> Bool { flags.contains(name) }
    public func value(_ name: String) -> String? { values[name]?.last }
    public func all(_ name: String) -> [String] { values[name] ?? [] }
}

public enum ArgumentParser {
    /// Parses `arguments` (without the subcommand). `--` ends options; with
    /// `stopAtFirstPositional`, so does the first positional (the PROGRAM of `memdir run`).
    public static func parse(_ arguments: [String], options: [OptionSpec], stopAtFirstPositional: Bool = false) throws(MemdirError) -> ParsedArguments {
        var result = ParsedArguments()
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if arg == "--" {
                result.positionals += arguments[i...]
                break
            }
            if arg == "--help" || arg == "-h" { result.help = true; continue }
            guard arg.hasPrefix("-") && arg != "-" else {
                result.positionals.append(arg)
                if stopAtFirstPositional {
                    result.positionals += arguments[i...]
                    break
                }
                continue
            }
            var name = arg
            var inline: String?
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            guard let spec = options.first(where: { $0.name == name }) else {
                throw .usage("unknown option '\(name)'")
            }
            if spec.value == nil {
                if inline != nil { throw .usage("option '\(name)' takes no value") }
                result.flags.insert(name)
                continue
            }
            let value: String
            if let inline {
                value = inline
            } else {
                guard i < arguments.count else { throw .usage("missing value for '\(name)'") }
                value = arguments[i]
                i += 1
            }
            if !spec.repeatable && result.values[name] != nil {
                throw .usage("option '\(name)' given more than once")
            }
            result.values[name, default: []].append(value)
        }
        return result
    }

    /// The OPTIONS section of a help text.
    public static func helpLines(_ options: [OptionSpec]) -> String {
        let rows = options.map { ($0.name + ($0.value.map { " <\($0)>" } ?? ""), $0.help + ($0.repeatable ? " (repeatable)" : "")) }
            + [("-h, --help", "Show help information.")]
        let width = (rows.map { $0.0.count }.max() ?? 0) + 2
        return rows.map { "  " + $0.0 + String(repeating: " ", count: width - $0.0.count) + $0.1 }.joined(separator: "\n")
    }
}
