// CheckAnswer.swift: the `leak-check-SEQ` file a running process writes when `memdir check`
// asks (README "The leak-check record"): the result, when the check began, and one `lost`
// line per block that is not still reachable. Read only as far as `check` needs it.

public struct CheckAnswer: Equatable, Sendable {
    public var file: String
    /// `complete`, `skipped` or `failed`.
    public var result: String
    /// The rest of the result line: why it was skipped or failed.
    public var reason: String?
    public var seq: UInt64?
    public var ms: UInt64?
    public var notes: [String]
    /// Lost blocks per kind (`definitely`, `indirectly`, `possibly`).
    public var lost: [String: Int]
    public var lostAddresses: Set<UInt64>

    public static func parse(_ text: String, path: String) throws(MemdirError) -> CheckAnswer {
        let lines = try checkedLines(text, kind: "leak-check", path: path)
        guard lines.last == "end" else { throw .malformedRecord(path: path, reason: "no end line (cut short)") }
        var answer = CheckAnswer(file: path, result: "", reason: nil, seq: nil, ms: nil, notes: [], lost: [:], lostAddresses: [])
        for line in lines.dropLast() {
            let (key, value) = keyValue(line)
            switch key {
            case "result":
                let parts = value.split(separator: " ", maxSplits: 1)
                answer.result = parts.first.map(String.init) ?? ""
                answer.reason = parts.count > 1 ? unescapeValue(parts[1]) : nil
            case "seq": answer.seq = parseNumber(value)
            case "ms": answer.ms = parseNumber(value)
            case "note": answer.notes.append(unescapeValue(value))
            case "lost":
                let parts = value.split(separator: " ")
                guard parts.count == 2, let address = parseNumber(parts[0]) else { throw .malformedRecord(path: path, reason: "bad lost line '\(line)'") }
                answer.lost[String(parts[1]), default: 0] += 1
                answer.lostAddresses.insert(address)
            default: break   // unknown keys are for later versions
            }
        }
        guard !answer.result.isEmpty else { throw .malformedRecord(path: path, reason: "no result line") }
        return answer
    }
}
