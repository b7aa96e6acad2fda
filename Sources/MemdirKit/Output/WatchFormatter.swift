// WatchFormatter.swift: renders `memdir watch` samples: one line per process per interval
// (text, or JSON lines with schema memdir-watch/1), or a whole screen for a terminal.

public enum WatchFormatter {
    public static let schema = "memdir-watch/1"

    /// "21:40:01" (UTC) for a unix time in ms.
    static func clock(_ unixMs: Int) -> String {
        let parts = utcTimeOfDay(unixMs / 1000)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second))"
    }

    static func rate(_ v: Double?) -> String {
        guard let r = whole(v) else { return "-" }
        return r > 0 ? "+\(r)" : "\(r)"
    }

    /// A rate as a whole number, clamped to Int64 (a rate from hostile counters may be any
    /// Double); nil when there is none.
    static func whole(_ v: Double?) -> Int64? {
        guard let v, !v.isNaN else { return nil }
        if v >= 9.2e18 { return .max }
        if v <= -9.2e18 { return .min }
        return Int64(v.rounded())
    }

    /// One line: `21:40:01 pid 4242 heap 11320 B in 31 blocks, peak 11320 B, +2000 B/s, 120 allocs/s (running)`.
    public static func line(_ s: WatchSample) -> String {
        var out = "\(clock(s.timeUnixMs)) pid \(s.pid.map(String.init) ?? baseName(s.runDirectory).printable)"
        if let c = s.counters {
            out += " heap \(c.heapCurrent) B in \(c.liveBlocks) blocks, peak \(c.heapPeak) B, \(rate(s.heapGrowthPerSecond)) B/s, "
            out += "\(whole(s.allocationsPerSecond).map { String($0) } ?? "-") allocs/s"
        } else {
            out += " no counters"
        }
        return out + " (\((s.state ?? "no status").printable))\n"
    }

    public static func jsonLine(_ s: WatchSample) -> String {
        func number(_ v: Double?) -> JSONValue { whole(v).map { .number($0) } ?? .null }
        var pairs: [(String, JSONValue)] = [
            ("schema", .string(schema)), ("time_unix_ms", .number(Int64(s.timeUnixMs))),
            ("run_directory", .string(s.runDirectory)), ("pid", s.pid.map { .number(Int64($0)) } ?? .null),
            ("state", s.state.map { .string($0) } ?? .null),
        ]
        if let c = s.counters {
            pairs += [("heap_current", .number(c.heapCurrent)), ("heap_peak", .number(c.heapPeak)), ("live_blocks", .number(c.liveBlocks)),
                      ("allocations", .unsigned(c.allocations))]
        } else {
            pairs += [("heap_current", .null), ("heap_peak", .null), ("live_blocks", .null), ("allocations", .null)]
        }
        pairs += [("allocations_per_second", number(s.allocationsPerSecond)), ("heap_growth_per_second", number(s.heapGrowthPerSecond))]
        pairs.append(("groups", s.groups.map { groups in
            .array(groups.map { g in
                .object([("key", .string(g.key)), ("location", .string(g.location)), ("blocks", .number(Int64(g.blocks))),
                         ("bytes", .unsigned(g.bytes)), ("growth_since_start", .number(g.growthSinceStart)),
                         ("growth_last", .number(g.growthSinceLast))])
            })
        } ?? .null))
        return compact(.object(pairs)) + "\n"
    }

    /// JSON on one line (for JSON lines).
    static func compact(_ v: JSONValue) -> String {
        switch v {
        case .object(let pairs): return "{" + pairs.map { JSONValue.quote($0.0) + ":" + compact($0.1) }.joined(separator: ",") + "}"
        case .array(let items): return "[" + items.map(compact).joined(separator: ",") + "]"
        default: return v.render()
        }
    }

    /// The terminal screen: a header, then per process its totals and top groups.
    public static func screen(_ samples: [WatchSample], groups: [String: [WatchGroup]], interval: Double, width: Int) -> String {
        let title = "memdir watch: every \(interval) s; q quits", time = clock(samples.first?.timeUnixMs ?? 0)
        var lines = [title + String(repeating: " ", count: max(1, width - title.count - time.count)) + time]
        for s in samples {
            lines.append("")
            lines.append("pid \(s.pid.map(String.init) ?? baseName(s.runDirectory).printable) \((s.exe ?? "?").printable) (\((s.state ?? "no status").printable))")
            if let c = s.counters {
                lines.append("  heap \(c.heapCurrent) B in \(c.liveBlocks) blocks   peak \(c.heapPeak) B   \(rate(s.heapGrowthPerSecond)) B/s   "
                             + "\(whole(s.allocationsPerSecond).map { String($0) } ?? "-") allocs/s")
            }
            let top = groups[s.runDirectory] ?? []
            if !top.isEmpty {
                lines.append("  " + pad("bytes", 12) + pad("blocks", 9) + pad("since start", 13) + pad("last", 11) + "  location")
                for g in top {
                    lines.append("  " + pad(String(g.bytes), 12) + pad(String(g.blocks), 9) + pad(signed(g.growthSinceStart), 13)
                                 + pad(signed(g.growthSinceLast), 11) + "  " + g.location.printable)
                }
            }
        }
        return lines.map { String($0.prefix(width)) }.joined(separator: "\u{1B}[K\n") + "\u{1B}[K\n\u{1B}[J"
    }

    static func signed(_ v: Int64) -> String { v > 0 ? "+\(v)" : "\(v)" }
    static func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
}
