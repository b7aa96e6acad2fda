// FileKinds.swift: the JSON files memdir writes, by schema, with what each is and which command
// makes it, so a file given where another kind was wanted (a report to diff) gets an error that
// says what the file is and how to make the right one, not just "version not supported".

enum FileKinds {
    /// Schema name (without the version) -> what the file is.
    static let known: [(schema: String, name: String)] = [
        ("memdir-report", "a memdir report"), ("memdir-snapshot", snapshot), ("memdir-watch", history),
        ("memdir-diff", "a memdir diff"), ("memdir-stats", "a memdir stats report"), ("memdir-check", "a memdir check answer"),
    ]

    static let snapshot = "a snapshot"
    static let snapshotHint = "make snapshots with `memdir snapshot DIR -o FILE`, or give the records directory itself"
    static let history = "a watch history"
    static let historyHint = "write one with `memdir watch DIR --json > FILE`"

    /// `error` from reading `path` as `expected`: when it says the file has another memdir
    /// schema, the error that names what the file is instead; otherwise `error` itself.
    static func explain(_ error: MemdirError, expected: String, hint: String) -> MemdirError {
        var error = error
        // JSON lines (a watch history) do not parse as one document: look at the first line.
        if case .malformedRecord(let path, _) = error, case .success(let text) = readTextFile(path, limit: FileLimit.userFile, followLinks: true),
           let first = text.split(separator: "\n").first, let schema = schema(ofJSON: String(first)) {
            error = .unsupportedVersion(path: path, version: schema)
        }
        guard case .unsupportedVersion(let path, let version) = error else { return error }
        let schema = String(version.prefix { $0 != "/" })
        guard let kind = known.first(where: { $0.schema == schema }), kind.name != expected else { return error }
        return .wrongFileKind(path: path, found: "\(kind.name) (\(version))", expected: expected, hint: hint)
    }

    /// The schema of a JSON document, if the text is one and names it.
    static func schema(ofJSON text: String) -> String? {
        guard let value = try? JSONParser.parse(text) else { return nil }
        return value["schema"]?.stringValue
    }
}
