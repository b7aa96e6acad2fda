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
            out += "warning: could not resolve \(module): \(message)\n"
        }
        out += "\n"
        let n = report.processes.count
        let processes = "\(n) process" + (n == 1 ? "" : "es")
        if report.isClean {
            out += "no leaks, no bad frees in \(processes)\n"
        } else {
            out += "total: \(report.leakedBlocks) leaked block\(s(report.leakedBlocks)), \(report.leakedBytes) bytes; "
                + "\(report.badFreeCount) bad free\(s(report.badFreeCount))"
                + (report.mappingCount + report.segmentCount > 0
                    ? "; \(report.mappingCount) mapping\(s(report.mappingCount)) still mapped, "
                        + "\(report.segmentCount) segment\(s(report.segmentCount)) outliving the process" : "")
                + " in \(processes)\n"
        }
        return out
    }

    func s(_ n: Int) -> String { n == 1 ? "" : "s" }

    func formatProcess(_ p: ProcessReport, resolved: Bool) -> String {
        var out = "process \(p.process.map { String($0.pid) } ?? p.name) \(p.process?.exe ?? "?")"
        out += " (\(p.status?.summary ?? "no status"))"
        if let parent = p.process?.parent { out += ", forked from \(parent)" }
        out += "\n"
        if p.leaks.isEmpty && p.badFrees.isEmpty && p.mappings.isEmpty && p.segments.isEmpty {
            out += "  no leaks, no bad frees\n"
        }
        if !p.leaks.isEmpty {
            out += "  leaks: \(p.leakedBlocks) block\(s(p.leakedBlocks)), \(p.leakedBytes) bytes in \(p.leaks.count) group\(s(p.leaks.count))\n"
            if resolved {
                for g in p.leaks {
                    out += "    \(g.blocks) block\(s(g.blocks)), \(g.bytes) bytes at \(g.location)\n"
                    out += formatStack(g.stack, attributed: g.attributed, indent: "      ")
                }
            } else {
                let bw = max(6, p.leaks.map { String($0.blocks).count }.max() ?? 0)
                let yw = max(5, p.leaks.map { String($0.bytes).count }.max() ?? 0)
                out += "    " + pad("blocks", bw) + "  " + pad("bytes", yw) + "  location\n"
                for g in p.leaks {
                    out += "    " + pad(String(g.blocks), bw) + "  " + pad(String(g.bytes), yw) + "  \(g.location)\n"
                }
            }
        }
        if !p.badFrees.isEmpty {
            out += "  bad frees: \(p.badFrees.count)\n"
            for b in p.badFrees {
                let size = b.record.size.map { ", \($0) bytes" } ?? ""
                out += "    \(b.record.kind) of \(hex(b.record.address)) (\(b.record.via)\(size)) at \(b.location)\n"
                if resolved { out += formatStack(b.stack, attributed: b.attributed, indent: "      ") }
                if let a = b.allocLocation { out += "      allocated at \(a)\n" }
                if let f = b.freeLocation { out += "      first freed at \(f)\n" }
            }
        }
        out += SharedMemory.formatTable(p, resolved: resolved) { formatStack($0, attributed: $1, indent: "      ") }
        if let st = p.status, !st.isComplete {
            out += "  warning: record incomplete: \(st.unrecordedBlocks) live block\(s(st.unrecordedBlocks)) not recorded, "
                + "\(st.unremovedRecords) freed block\(s(st.unremovedRecords)) not removed (may show as leaks), "
                + "\(st.unrecordedEvents) bad free\(s(st.unrecordedEvents)) not recorded"
                + (st.error.map { ": \($0)" } ?? "") + "\n"
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
                out += "\(indent)\(marker) \(number) \(frame.describe(symbol: j))\(inlined)\n"
            }
        }
        return out
    }

    func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
