// NotedSource.swift: the location memtrack.h notes for a block (`src=FILE:LINE:FUNCTION`),
// and how it joins the stack's: preferred when the stack has no file and line (no debug info,
// a stripped binary, or `memdir list`), shown beside it when the two differ.

public struct NotedSource: Equatable, Sendable {
    public var file: String
    public var line: Int
    public var function: String

    public init(file: String, line: Int, function: String) {
        self.file = file
        self.line = line
        self.function = function
    }

    /// Parses `FILE:LINE:FUNCTION`; the file may itself contain ':', so it is split from the right.
    public init?(_ text: String) {
        guard let lastColon = text.lastIndex(of: ":") else { return nil }
        let head = text[..<lastColon]
        guard let lineColon = head.lastIndex(of: ":"), let line = Int(head[head.index(after: lineColon)...]) else { return nil }
        file = String(head[..<lineColon])
        self.line = line
        function = String(text[text.index(after: lastColon)...])
    }

    /// `function file:line`, as a resolved frame is written.
    public var description: String { function.isEmpty ? "\(file):\(line)" : "\(function) \(file):\(line)" }

    static func combine(fromStack: String, stack: [Frame], attributed: Attribution, source: String?) -> String {
        guard let source, let location = NotedSource(source) else { return fromStack }
        guard attributed.frame < stack.count, attributed.symbol < stack[attributed.frame].symbols.count,
              let file = stack[attributed.frame].symbols[attributed.symbol].file,
              let line = stack[attributed.frame].symbols[attributed.symbol].line else {
            return location.description
        }
        let same = line == location.line && (file == location.file || file.hasSuffix("/" + location.file)
            || location.file.hasSuffix("/" + file))
        return same ? fromStack : "\(fromStack) (source: \(location.description))"
    }
}
