// FoldedFormatter.swift: Brendan Gregg's folded stacks, the input of flamegraph.pl, speedscope
// and inferno: one line per distinct stack, frames outermost first joined by `;`, then a space
// and the live bytes. Inlined functions are frames of their own; a `;` inside a frame name becomes
// `:` and control bytes `\xHH` (the tools split the count off at the last space, so spaces may stay). Run directories are not a frame: the lines of
// several processes with the same stack add up in those tools, as they should.

public struct FoldedFormatter: OutputFormatter {
    public init() {}

    /// `--format table|folded` (folded excludes `--json`).
    static func parseFormat(_ a: ParsedArguments, json: Bool) throws(MemdirError) -> Bool {
        switch a.value("--format") ?? "table" {
        case "table": return false
        case "folded":
            if json { throw .usage("'--format folded' and '--json' exclude each other") }
            return true
        case let other: throw .usage("invalid value '\(other)' for '--format' (expected table or folded)")
        }
    }

    /// The frames of a stack, outermost first, each inlined symbol outermost first.
    public static func frameNames(_ stack: [Frame]) -> [String] {
        var names: [String] = []
        for frame in stack.reversed() {
            if frame.symbols.isEmpty { names.append(clean(frame.moduleLocation)); continue }
            for i in frame.symbols.indices.reversed() { names.append(clean(frame.describe(symbol: i))) }
        }
        return names
    }

    /// Control bytes written as `\xHH` (`String.printable`: a newline cannot split a stack, ESC
    /// cannot reach a terminal), then `;` as `:`.
    static func clean(_ name: String) -> String {
        String(name.printable.map { $0 == ";" ? ":" : $0 })
    }

    public func format(_ report: Report) -> String {
        var totals: [String: UInt64] = [:]
        var order: [String] = []
        for p in report.processes {
            for g in p.leaks {
                let line = g.stack.isEmpty ? "(no_stack)" : Self.frameNames(g.stack).joined(separator: ";")
                if totals[line] == nil { order.append(line) }
                totals[line, default: 0] &+= g.bytes
            }
        }
        return order.map { "\($0) \(totals[$0]!)\n" }.joined()
    }
}
