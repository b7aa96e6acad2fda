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
    /// The values the option accepts, when they are a fixed set (for completion and the man
    /// page). nil: taken from a placeholder of lowercase words ("caller|frame|stack").
    public var explicitChoices: [String]?

    public init(_ name: String, value: String? = nil, repeatable: Bool = false, choices: [String]? = nil, help: String) {
        self.name = name
        self.value = value
        self.help = help
        self.repeatable = repeatable
        self.explicitChoices = choices
    }

    /// The fixed set of values, or [] when any value goes (a flag, a FILE, a NAME).
    public var choices: [String] {
        if let explicitChoices { return explicitChoices }
        guard let value, value.contains("|") else { return [] }
        let words = value.split(separator: "|").map(String.init)
        return words.allSatisfy { w in !w.isEmpty && w.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } } ? words : []
    }

    /// What a shell should complete the value with.
    public var valueKind: ValueKind {
        guard let value else { return .none }
        if !choices.isEmpty { return .choices }
        switch value {
        case "DIR": return .directory
        case "FILE", "PATH": return .file
        default: return value.hasSuffix("DIR") ? .directory : value.hasSuffix("FILE") ? .file : .text
        }
    }

    public enum ValueKind: Sendable { case none, choices, file, directory, text }
}

public struct ParsedArguments: Sendable {
    public var flags: Set<String> = []
    public var values: [String: [String]] = [:]
    public var positionals: [String] = []
    public var help = false

    public func flag(_ name: String) -> Bool { flags.contains(name) }
    public func value(_ name: String) -> String? { values[name]?.last }
    public func all(_ name: String) -> [String] { values[name] ?? [] }

    /// The one optional positional most commands take (a records directory, or a pid), else
    /// `fallback`; a second one is a usage error.
    public func onlyPositional(default fallback: String) throws(MemdirError) -> String {
        guard positionals.count <= 1 else { throw .usage("unexpected argument '\(positionals[1])'") }
        return positionals.first ?? fallback
    }
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
                throw .usage("unknown option '\(name)'" + Suggestion.didYouMean(name, among: options.map(\.name) + ["--help"]))
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

/// "did you mean": the closest known name to a typo, when it is close enough to be the one meant.
public enum Suggestion {
    /// "; did you mean 'list'?" or "" when no candidate is close.
    public static func didYouMean(_ typed: String, among candidates: [String]) -> String {
        closest(typed, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// The candidate at the smallest edit distance (a swap of two neighbours counts one), if that
    /// distance is at most 2 and at most half the typed word (dashes aside); the first on a tie.
    public static func closest(_ typed: String, among candidates: [String]) -> String? {
        let core = typed.drop { $0 == "-" }.count
        var best: (name: String, distance: Int)?
        for c in candidates {
            let d = distance(typed, c)
            if d <= 2, d * 2 <= max(core, 1), d < (best?.distance ?? .max) { best = (c, d) }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and transpositions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
