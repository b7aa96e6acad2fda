// BlockAge.swift: how old a block is. A block's `ms` counts from its process's start
// (`start-unix-ms` in `process`), so its age now is now − start − ms. Also parses the
// durations the options take (`30s`, `500ms`, `2m`, `1h`; a plain number is seconds).

public enum BlockAge {
    public static func nowUnixMs() -> Int { realtimeMilliseconds() }

    /// The largest `ms` a block may have and still be at least `olderThanMs` old; nil (keep
    /// everything) when the process's start is unknown.
    /// Negative when no block can be old enough.
    public static func cutoff(olderThanMs: UInt64, startUnixMs: Int?, now: Int = nowUnixMs()) -> Int64? {
        guard let start = startUnixMs else { return nil }
        // `start` comes from a record and may be any number: saturate rather than trap.
        let age = Int64(now).subtractingReportingOverflow(Int64(start))
        guard !age.overflow else { return start > now ? .min : .max }
        let result = age.partialValue.subtractingReportingOverflow(Int64(clamping: olderThanMs))
        return result.overflow ? .min : result.partialValue
    }

    /// The longest duration an option takes: 2^40 ms (35 years), so every use fits an integer.
    static let maximumMs = Double(1 << 40)

    /// Milliseconds in `text` ("250ms", "30s", "2m", "1h", "1.5s", "30"), or nil.
    public static func parseDuration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let v = Double(text.dropLast(suffix.count)), v >= 0, v.isFinite, v * scale <= maximumMs else { return nil }
            return v * scale
        }
        guard let v = Double(text), v >= 0, v.isFinite, v * 1000 <= maximumMs else { return nil }
        return v * 1000
    }

    /// For options: a duration or a usage error naming the option.
    public static func option(_ text: String, name: String) throws(MemdirError) -> Double {
        guard let ms = parseDuration(text) else {
            throw .usage("invalid value '\(text)' for '\(name)' (expected a duration such as 30s, 500ms, 2m or 1h)")
        }
        return ms
    }
}
