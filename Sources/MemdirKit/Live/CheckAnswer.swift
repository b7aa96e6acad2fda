// CheckAnswer.swift: the `leak-check-SEQ` file a running process writes when `memdir check`
// asks (the catalog's Record format, "leak-check"): the result, when the check began, and one `lost`
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

    /// The answer in the `leak-check` format, read by LeakCheckParser; only a complete file
    /// (its `end` line) is an answer.
    public static func parse(_ text: String, path: String) throws(MemdirError) -> CheckAnswer {
        let record = try LeakCheckParser.parse(Array(text.utf8), path: path)
        guard record.ended else { throw .malformedRecord(path: path, reason: "no end line (cut short)") }
        var answer = CheckAnswer(file: path, result: "complete", reason: nil, seq: record.seq, ms: record.ms,
                                 notes: record.notes, lost: [:], lostAddresses: [])
        switch record.result {
        case .complete: break
        case .skipped(let why): answer.result = "skipped"; answer.reason = why
        case .failed(let why): answer.result = "failed"; answer.reason = why
        }
        record.lost.forEach { address, kind in
            answer.lost[Self.words[kind] ?? "\(kind)", default: 0] += 1
            answer.lostAddresses.insert(address)
        }
        return answer
    }

    /// The words of the `lost` lines, which `lost` counts by.
    static let words: [LeakKind: String] = [.definitelyLost: "definitely", .indirectlyLost: "indirectly", .possiblyLost: "possibly"]
}
