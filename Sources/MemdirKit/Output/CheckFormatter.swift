// CheckFormatter.swift: renders `memdir check`: each process's answer, then the report of its
// live set at that moment; JSON schema memdir-check/1 (the catalog's Long-running programs).

public enum CheckFormatter {
    public static let schema = "memdir-check/1"

    static func headline(_ run: String, _ a: CheckAnswer) -> String {
        var out = "leak check of \(run.printable): answer \(baseName(a.file).printable)"
        if let ms = a.ms { out += ", at \(ms) ms" }
        if let seq = a.seq { out += " (seq \(seq))" }
        out += "\n"
        switch a.result {
        case "complete":
            let kinds = ["definitely", "indirectly", "possibly"].map { "\(a.lost[$0] ?? 0) \($0)" }.joined(separator: ", ")
            out += "  lost blocks: \(kinds)\n"
        default:
            out += "  result \(a.result.printable)\(a.reason.map { ": \($0.printable)" } ?? ""); the live set at that moment follows\n"
        }
        for note in a.notes { out += "  note: \(note.printable)\n" }
        return out
    }

    public static func text(_ answers: [(run: String, answer: CheckAnswer)], report: Report, palette: Palette = .plain) -> String {
        answers.map { headline($0.run, $0.answer) }.joined() + "\n" + TableFormatter(palette: palette).format(report)
    }

    public static func json(_ answers: [(run: String, answer: CheckAnswer)], report: Report) -> String {
        JSONValue.object([
            ("schema", .string(schema)),
            ("checks", .array(answers.map { run, a in
                .object([("run_directory", .string(run)), ("answer", .string(a.file)), ("result", .string(a.result)),
                         ("reason", a.reason.map { .string($0) } ?? .null),
                         ("seq", a.seq.map { .unsigned($0) } ?? .null), ("ms", a.ms.map { .unsigned($0) } ?? .null),
                         ("notes", .array(a.notes.map { .string($0) })),
                         ("lost", .object(["definitely", "indirectly", "possibly"].map { ($0, .number(Int64(a.lost[$0] ?? 0))) }))])
            })),
            ("report", JSONFormatter().value(report)),
        ]).render() + "\n"
    }
}
