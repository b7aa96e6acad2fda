// Palette.swift: colour for the text report on a terminal (`--color=auto|always|never`, NO_COLOR),
// as swift-format's diagnostics do: only when the stream is a terminal and TERM is not `dumb`.

public enum ColorChoice: String, Sendable, CaseIterable {
    case auto, always, never
}

/// ANSI colours for the parts of a report a reader looks for first: the kinds, the attributed
/// location, and the summary. Off (every method returns its text as it is) unless enabled.
public struct Palette: Sendable {
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    public static let plain = Palette(enabled: false)

    /// `auto`: on when `fd` is a terminal, TERM is not `dumb` and NO_COLOR is unset or empty
    /// (no-color.org); `always` and `never` override both.
    public static func choose(_ choice: ColorChoice, fd: Int32, environment: [String: String]) -> Palette {
        switch choice {
        case .always: return Palette(enabled: true)
        case .never: return .plain
        case .auto:
            if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .plain }
            if (environment["TERM"] ?? "dumb") == "dumb" { return .plain }
            return Palette(enabled: isTerminal(fd))
        }
    }

    func paint(_ text: String, _ code: String) -> String {
        enabled && !text.isEmpty ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    public func kind(_ kind: LeakKind, _ text: String) -> String {
        switch kind {
        case .definitelyLost: return paint(text, "1;31")
        case .indirectlyLost: return paint(text, "31")
        case .possiblyLost: return paint(text, "33")
        case .stillReachable: return paint(text, "32")
        default: return paint(text, "2")
        }
    }
    public func badFree(_ text: String) -> String { paint(text, "1;31") }
    public func location(_ text: String) -> String { paint(text, "36") }
    public func heading(_ text: String) -> String { paint(text, "1") }
    public func warning(_ text: String) -> String { paint(text, "33") }
    public func good(_ text: String) -> String { paint(text, "1;32") }
    public func bad(_ text: String) -> String { paint(text, "1;31") }
}
