// TableFormatter.swift: the human-readable report (`memdir list`, `memdir resolve`, `memdir run`).

/// Renders a report. One type per format; they only read the Report.
public protocol OutputFormatter {
    func format(_ report: Report) -> String
}

public struct TableFormatter: OutputFormatter {
    public init() {}

    public func format(_ report: Report) -> String {
        var out = ""
        for (i, p) in report.processes.enumerated() {
            if i > 0 { out += "\n" }
            out += formatProcess(p, resolved: report.resolved)
        }
        for (module, message) in report.resolveFailures.sorted(by: { $0.key < $1.key }) {
            out += "warning: could not resolve \(module.printable): \(message.printable)\n"
        }
        out += "\n"
        let n = report.processes.count
        let processes = "\(n) process" + (n == 1 ? "" : "es")
        if report.isClean {
            out += "no leaks, no bad frees in \(processes)\n"
        } else if report.leakedBlocks == 0 && report.badFreeCount == 0 {
            let incomplete = report.processes.filter(\.recordIncomplete).count
            out += "no leaks, no bad frees recorded, but the record is incomplete in \(incomplete) of \(processes)\n"
        } else {
            out += "total: \(report.leakedBlocks) leaked block\(s(report.leakedBlocks)), \(report.leakedBytes) bytes; "
                + "\(report.badFreeCount) bad free\(s(report.badFreeCount)) in \(processes)\n"
        }
        return out
    }

    func s(_ n: Int) -> String { n == 1 ? "" : "s" }

    func formatProcess(_ p: ProcessReport, resolved: Bool) -> String {
        var out = "process \(p.process.map { String($0.pid) } ?? p.name) \((p.process?.exe ?? "?").printable)"
        out += " (\((p.status?.summary ?? "no status").printable))"
        if let parent = p.process?.parent { out += ", forked from \(parent.printable)" }
        out += "\n"
        if p.leaks.isEmpty && p.badFrees.isEmpty {
            out += p.recordIncomplete ? "  no leaks, no bad frees recorded (the record is incomplete)\n" : "  no leaks, no bad frees\n"
        }
        if !p.leaks.isEmpty {
            out += "  leaks: \(p.leakedBlocks) block\(s(p.leakedBlocks)), \(p.leakedBytes) bytes in \(p.leaks.count) group\(s(p.leaks.count))\n"
            if resolved {
                for g in p.leaks {
                    out += "    \(g.blocks) block\(s(g.blocks)), \(g.bytes) bytes at \(g.location.printable)\n"
                    out += formatStack(g.stack, attributed: g.attributed, indent: "      ")
                }
            } else {
                let bw = max(6, p.leaks.map { String($0.blocks).count }.max() ?? 0)
                let yw = max(5, p.leaks.map { String($0.bytes).count }.max() ?? 0)
                out += "    " + pad("blocks", bw) + "  " + pad("bytes", yw) + "  location\n"
                for g in p.leaks {
                    out += "    " + pad(String(g.blocks), bw) + "  " + pad(String(g.bytes), yw) + "  \(g.location.printable)\n"
                }
            }
        }
        if !p.badFrees.isEmpty {
            out += "  bad frees: \(p.badFrees.count)\n"
            for b in p.badFrees {
                let size = b.record.size.map { ", \($0) bytes" } ?? ""
                out += "    \(b.record.kind) of \(hex(b.record.address)) (\(b.record.via)\(size)) at \(b.location.printable)\n"
                if resolved { out += formatStack(b.stack, attributed: b.attributed, indent: "      ") }
                if let a = b.allocLocation { out += "      allocated at \(a.printable)\n" }
                if let f = b.freeLocation { out += "      first freed at \(f.printable)\n" }
            }
        }
        if let st = p.status, !st.isComplete {
            out += "  warning: record incomplete: \(st.unrecordedBlocks) live block\(s(st.unrecordedBlocks)) not recorded, "
                + "\(st.unremovedRecords) freed block\(s(st.unremovedRecords)) not removed (may show as leaks), "
                + "\(st.unrecordedEvents) bad free\(s(st.unrecordedEvents)) not recorded"
                + (st.error.map { ": \($0.printable)" } ?? "") + "\n"
        }
        if p.status?.state == "running" {
            out += "  note: state running: the process is still running or was killed (e.g. SIGKILL); "
                + "the last settle window may be missing\n"
        }
        if p.problemCount > 0 {
            out += "  warning: \(p.problemCount) record\(s(p.problemCount)) could not be read (see errors)\n"
        }
        return out
    }

    func formatStack(_ stack: [Frame], attributed: Attribution, indent: String) -> String {
        var out = ""
        for (i, frame) in stack.enumerated() {
            let count = max(1, frame.symbols.count)
            for j in 0..<count {
                let marker = (i == attributed.frame && j == attributed.symbol) ? "->" : "  "
                let number = j == 0 ? "#\(i)" : String(repeating: " ", count: "#\(i)".count)
                let inlined = j < frame.symbols.count - 1 ? " (inlined)" : ""
                out += "\(indent)\(marker) \(number) \(frame.describe(symbol: j).printable)\(inlined)\n"
            }
        }
        return out
    }

    func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
