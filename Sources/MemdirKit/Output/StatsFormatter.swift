// StatsFormatter.swift: renders `memdir stats` as text (in libmemusage's shape) or JSON
// (schema memdir-stats/1, the catalog's Long-running programs).

public enum StatsFormatter {
    public static let schema = "memdir-stats/1"

    public static func text(_ stats: [ProcessStats]) -> String {
        var out = ""
        for (n, p) in stats.enumerated() {
            let c = p.counters
            if n > 0 { out += "\n" }
            out += p.title.printable + "\n"
            out += "  heap: \(countText(c.heapCurrent)) bytes in \(countText(c.liveBlocks)) live blocks; peak \(countText(c.heapPeak)) bytes (usable sizes)\n"
            out += "  total: \(countText(c.allocations)) allocations, \(countText(c.bytesRequested)) bytes requested; \(countText(c.frees)) frees; \(countText(c.threads)) threads\n"
            out += "    entry point          calls\n"
            for (i, name) in counterEntryPoints.enumerated() where c.calls[i] > 0 {
                out += "    " + pad(name, 15) + leftPad(countText(c.calls[i]), 11) + "\n"
            }
            out += "  size histogram (requested bytes):\n"
            // Shares and bar lengths in floating point: counts read from a file may be any word.
            let total = max(Double(c.histogram.reduce(0) { $0 &+ $1 }), 1)
            let largest = max(c.histogram.max() ?? 1, 1)
            for (b, count) in c.histogram.enumerated() where count > 0 {
                let r = Counters.bucketRange(b)
                let bar = String(repeating: "=", count: max(1, min(50, Int(Double(count) * 50 / Double(largest)))))
                out += "    " + leftPad(countText(r.lowerBound), 10) + "-" + pad(countText(r.upperBound), 11)
                    + leftPad(countText(count), 10) + leftPad(String(Int(min(100, Double(count) * 100 / total))) + "%", 5) + " " + bar + "\n"
            }
        }
        return out
    }

    public static func value(_ p: ProcessStats) -> JSONValue {
        let c = p.counters
        return .object([
            ("run_directory", .string(p.directory)),
            ("pid", p.process.map { .number(Int64($0.pid)) } ?? .null),
            ("exe", p.process.map { .string($0.exe) } ?? .null),
            ("state", p.status.map { .string($0.state) } ?? .null),
            ("calls", .object(counterEntryPoints.enumerated().map { ($0.element, .unsigned(c.calls[$0.offset])) })),
            ("allocations", .unsigned(c.allocations)),
            ("bytes_requested", .unsigned(c.bytesRequested)),
            ("heap", .object([("current", .number(c.heapCurrent)), ("peak", .number(c.heapPeak)),
                              ("peak_tolerance_per_thread", .unsigned(c.peakTolerance)),
                              ("live_blocks", .number(c.liveBlocks))])),
            ("threads", .number(Int64(c.threads))),
            ("histogram", .array(c.histogram.enumerated().filter { $0.element > 0 }.map { b, count in
                let r = Counters.bucketRange(b)
                return .object([("min", .unsigned(r.lowerBound)), ("max", .unsigned(r.upperBound)), ("count", .unsigned(count))])
            })),
        ])
    }

    public static func json(_ stats: [ProcessStats], directory: String) -> String {
        JSONValue.object([("schema", .string(schema)), ("directory", .string(directory)),
                          ("processes", .array(stats.map(value)))]).render() + "\n"
    }

    static func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
    static func leftPad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
}
