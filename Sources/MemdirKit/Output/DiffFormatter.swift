// DiffFormatter.swift: renders a SnapshotDiff as text or JSON (schema memdir-diff/1, the catalog's Long-running programs).

public enum DiffFormatter {
    public static let schema = "memdir-diff/1"

    static func signed(_ n: Int64) -> String { n > 0 ? "+" + countText(n) : countText(n) }

    public static func text(_ d: SnapshotDiff) -> String {
        var out = "diff over \(String(format3(d.seconds))) s (\(d.before.directory.printable) -> \(d.after.directory.printable))\n"
        for p in d.processes {
            let state = p.state.map { " (\($0))" } ?? ""
            out += "process \(p.pid.map(String.init) ?? p.name.printable) \((p.exe ?? "?").printable)\(state.printable): "
            out += "\(countText(p.after?.liveBytes ?? 0)) bytes in \(countText(p.after?.liveBlocks ?? 0)) blocks, "
            out += "\(signed(p.bytesGrowth)) bytes, \(signed(Int64(p.blocksGrowth))) blocks\n"
            if p.groups.isEmpty { out += "  no group changed\n"; continue }
            out += "  " + pad("bytes", 10, left: true) + pad("blocks", 9, left: true) + "  " + pad("before -> after", 24) + "location\n"
            for g in p.groups {
                out += "  " + pad(signed(g.bytesGrowth), 10, left: true) + pad(signed(Int64(g.blocksGrowth)), 9, left: true) + "  "
                    + pad("\(countText(g.bytesBefore)) -> \(countText(g.bytesAfter))", 24) + g.location.printable + "\n"
            }
        }
        return out
    }

    public static func json(_ d: SnapshotDiff) -> String {
        JSONValue.object([
            ("schema", .string(schema)),
            ("before", .object([("source", .string(d.before.directory)), ("taken_unix_ms", .number(Int64(d.before.takenUnixMs)))])),
            ("after", .object([("source", .string(d.after.directory)), ("taken_unix_ms", .number(Int64(d.after.takenUnixMs)))])),
            ("processes", .array(d.processes.map { p in
                .object([
                    ("name", .string(p.name)), ("pid", p.pid.map { .number(Int64($0)) } ?? .null),
                    ("exe", p.exe.map { .string($0) } ?? .null), ("state", p.state.map { .string($0) } ?? .null),
                    ("bytes_before", .unsigned(p.before?.liveBytes ?? 0)), ("bytes_after", .unsigned(p.after?.liveBytes ?? 0)),
                    ("blocks_before", .number(Int64(p.before?.liveBlocks ?? 0))), ("blocks_after", .number(Int64(p.after?.liveBlocks ?? 0))),
                    ("groups", .array(p.groups.map { g in
                        .object([("key", .string(g.key)), ("location", .string(g.location)),
                                 ("bytes_growth", .number(g.bytesGrowth)), ("blocks_growth", .number(Int64(g.blocksGrowth))),
                                 ("bytes_before", .unsigned(g.bytesBefore)), ("bytes_after", .unsigned(g.bytesAfter)),
                                 ("blocks_before", .number(Int64(g.blocksBefore))), ("blocks_after", .number(Int64(g.blocksAfter)))])
                    })),
                ])
            })),
        ]).render() + "\n"
    }

    static func format3(_ v: Double) -> String {
        let ms = Int(exactly: (v * 1000).rounded()) ?? 0   // snapshot times are checked to lie within 2^50 ms
        let frac = String(abs(ms) % 1000)
        return "\(ms < 0 ? "-" : "")\(abs(ms) / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    static func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, w - s.count))
        return left ? fill + s : s + fill
    }
}
