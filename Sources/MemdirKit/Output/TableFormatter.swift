// TableFormatter.swift: the human-readable report (`memdir list`, `memdir resolve`, `memdir run`).

/// Renders a report. One type per format; they only read the Report.
public protocol OutputFormatter {
    func format(_ report: Report) -> String
}

public struct TableFormatter: OutputFormatter {
    /// `--gen-suppressions`: a valgrind entry after each listed group.
    public var suppressionEntries = false
    /// Colour on a terminal (`--color`); plain by default.
    public var palette: Palette

    public init(suppressionEntries: Bool = false, palette: Palette = .plain) {
        self.suppressionEntries = suppressionEntries
        self.palette = palette
    }

    public func format(_ report: Report) -> String {
        var out = ""
        for (i, p) in report.processes.enumerated() {
            if i > 0 { out += "\n" }
            out += formatProcess(p, resolved: report.resolved)
        }
        for (module, message) in report.resolveFailures.sorted(by: { $0.key < $1.key }) {
            out += "warning: could not resolve \(module.printable): \(message.printable)\n"
        }
        if report.suppressionsWithoutSymbols {
            out += "note: function names were not resolved (list, or run without addr2line): only the obj: and module patterns of the suppressions could match\n"
        }
        out += "\n"
        let n = report.processes.count
        let processes = "\(n) process" + (n == 1 ? "" : "es")
        out += palette.heading("LEAK SUMMARY (\(processes)):") + "\n"
        out += leakSummary(report.totals, unclassifiedReason: nil, indent: "")
        out += paintIf(report.badFreeCount > 0, label("bad frees"), palette.badFree) + "\(grouped(report.badFreeCount))\n"
        if report.suppressedBadFreeCount > 0 { out += label("suppressed bad frees") + "\(grouped(report.suppressedBadFreeCount))\n" }
        var defaults = Tally(), defaultFrees = 0
        for (supp, tally) in report.suppressionUses {
            if supp.builtIn { defaults.add(tally); continue }
            out += "  suppressed by \(supp.name) (\(supp.file):\(supp.line)): \(grouped(tally.bytes)) bytes in \(grouped(tally.blocks)) blocks\n"
        }
        for (supp, count) in report.badFreeSuppressionUses {
            if supp.builtIn { defaultFrees += count; continue }
            out += "  suppressed by \(supp.name) (\(supp.file):\(supp.line)): \(grouped(count)) bad free\(s(count))\n"
        }
        if defaults.blocks + defaultFrees > 0 {
            // The toolchain's own leaks, one line: --default-suppressions=no lists them.
            out += "  suppressed by default suppressions: \(grouped(defaults.bytes)) bytes in \(grouped(defaults.blocks)) blocks"
                + (defaultFrees > 0 ? ", \(grouped(defaultFrees)) bad free\(s(defaultFrees))" : "") + " (--default-suppressions=no shows them)\n"
        }
        if report.isClean {
            out += palette.good("no leaks, no bad frees in \(processes)") + "\n"
        } else if report.leakedBlocks == 0 && report.badFreeCount == 0 {
            let incomplete = report.processes.filter(\.recordIncomplete).count
            out += palette.warning("no leaks, no bad frees recorded, but the record is incomplete in \(incomplete) of \(processes)") + "\n"
        } else {
            out += palette.bad("total: \(grouped(report.leakedBlocks)) lost block\(s(report.leakedBlocks)), \(grouped(report.leakedBytes)) bytes; "
                + "\(grouped(report.badFreeCount)) bad free\(s(report.badFreeCount))"
                + (report.mappingCount + report.segmentCount > 0
                    ? "; \(grouped(report.mappingCount)) mapping\(s(report.mappingCount)) still mapped, "
                        + "\(grouped(report.segmentCount)) segment\(s(report.segmentCount)) outliving the process" : "")
                + " in \(processes)") + "\n"
        }
        return out
    }

    /// valgrind's words, labels aligned on the colon: `   definitely lost: 1,234 bytes in 5 blocks`.
    func leakSummary(_ t: LeakTotals, unclassifiedReason: String?, indent: String) -> String {
        var out = ""
        for kind in LeakKind.classified {
            out += indent + paintIf(t[kind].blocks > 0, label(kind.words)) { palette.kind(kind, $0) }
                + "\(grouped(t[kind].bytes)) bytes in \(grouped(t[kind].blocks)) blocks\n"
        }
        out += indent + label("suppressed") + "\(grouped(t.suppressed.bytes)) bytes in \(grouped(t.suppressed.blocks)) blocks\n"
        let unclassified = t[.notClassified]
        if unclassified.blocks > 0 {
            out += indent + label("not classified") + "\(grouped(unclassified.bytes)) bytes in \(grouped(unclassified.blocks)) blocks"
                + (unclassifiedReason.map { " (\($0.printable))" } ?? "") + "\n"
        }
        return out
    }

    func label(_ text: String) -> String { pad(text, 18) + ": " }

    func paintIf(_ condition: Bool, _ text: String, _ paint: (String) -> String) -> String {
        condition ? paint(text) : text
    }

    func grouped<T: BinaryInteger>(_ n: T) -> String { countText(n) }

    func s(_ n: Int) -> String { n == 1 ? "" : "s" }

    func formatProcess(_ p: ProcessReport, resolved: Bool) -> String {
        var out = palette.heading("process \(p.process.map { String($0.pid) } ?? p.name) \((p.process?.exe ?? "?").printable)")
        out += " (\((p.status?.summary ?? "no status").printable))"
        if let parent = p.process?.parent { out += ", forked from \(parent.printable)" }
        out += "\n"
        if !p.leaks.isEmpty {
            out += "  loss records: \(p.leaks.count)\n"
            if resolved {
                for g in p.leaks {
                    out += "    \(palette.kind(g.kind, g.kind.words)): \(grouped(g.blocks)) block\(s(g.blocks)), \(grouped(g.bytes)) bytes at \(palette.location(g.location.printable))\n"
                    out += formatStack(g.stack, attributed: g.attributed, indent: "      ")
                    if suppressionEntries { out += SuppressionWriter.entry(for: g) }
                }
            } else {
                let bw = max(6, p.leaks.map { grouped($0.blocks).count }.max() ?? 0)
                let yw = max(5, p.leaks.map { grouped($0.bytes).count }.max() ?? 0)
                let kw = p.leaks.map { $0.kind.words.count }.max() ?? 0
                out += "    " + pad("blocks", bw) + "  " + pad("bytes", yw) + "  " + "kind".padding(kw) + "  location\n"
                for g in p.leaks {
                    out += "    " + pad(grouped(g.blocks), bw) + "  " + pad(grouped(g.bytes), yw) + "  "
                        + palette.kind(g.kind, g.kind.words.padding(kw)) + "  \(palette.location(g.location.printable))\n"
                    if suppressionEntries { out += SuppressionWriter.entry(for: g) }
                }
            }
        }
        if !p.badFrees.isEmpty {
            out += "  bad frees: \(grouped(p.badFrees.count))\n"
            for b in p.badFrees {
                let size = b.record.size.map { ", \(grouped($0)) bytes" } ?? ""
                // A mismatch also says what allocated the block and what a sized delete was told.
                let freed = b.record.freedSize.map { " of \(grouped($0)) bytes" } ?? ""
                let family = b.record.family.map { ", \($0) block" } ?? ""
                out += "    \(palette.badFree(b.record.kind)) of \(hex(b.record.address)) (\(b.record.via)\(freed)\(family)\(size)) at \(palette.location(b.location.printable))\n"
                if resolved { out += formatStack(b.stack, attributed: b.attributed, indent: "      ") }
                if let a = b.allocLocation { out += "      allocated at \(a.printable)\n" }
                if let f = b.freeLocation { out += "      first freed at \(f.printable)\n" }
                if suppressionEntries { out += SuppressionWriter.entry(for: b) }
            }
        }
        out += SharedMemory.formatTable(p, resolved: resolved) { formatStack($0, attributed: $1, indent: "      ") }
        if let st = p.status, !st.isComplete {
            out += "  " + palette.warning("warning:") + " record incomplete: \(grouped(st.unrecordedBlocks)) live block\(s(st.unrecordedBlocks)) not recorded, "
                + "\(grouped(st.unremovedRecords)) freed block\(s(st.unremovedRecords)) not removed (may show as leaks), "
                + "\(grouped(st.unrecordedEvents)) bad free\(s(st.unrecordedEvents)) or other record\(s(st.unrecordedEvents)) not recorded"
                + (st.error.map { ": \($0.printable)" } ?? "") + "\n"
        }
        // The other reasons (the counters' one, first in the list, has the line above).
        for reason in p.incompleteReasons.dropFirst(p.status.map { $0.isComplete ? 0 : 1 } ?? 0) {
            out += "  warning: record incomplete: \(reason.printable)\n"
        }
        if p.status?.state == "running" {
            out += "  note: state running: the process is still running or was killed (e.g. SIGKILL); "
                + "the last settle window may be missing\n"
        }
        if p.problemCount > 0 {
            out += "  " + palette.warning("warning:") + " \(grouped(p.problemCount)) record\(s(p.problemCount)) could not be read (see errors)\n"
        }
        for note in p.classification.notes { out += "  note: leak check: \(note.printable)\n" }
        out += "  leak summary:\n" + leakSummary(p.totals, unclassifiedReason: p.unclassifiedReason, indent: "  ")
        if p.suppressedBadFrees > 0 { out += "  " + label("suppressed bad frees") + "\(grouped(p.suppressedBadFrees))\n" }
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
                let text = frame.describe(symbol: j).printable
                out += "\(indent)\(marker) \(number) \(marker == "->" ? palette.location(text) : text)\(inlined)\n"
            }
        }
        return out
    }

    func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

extension String {
    /// Left-aligned in `width` columns.
    fileprivate func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// The one number format of every text output: 1234567 -> "1,234,567", as valgrind prints
/// counts (and -1234 -> "-1,234").
public func countText<T: BinaryInteger>(_ n: T) -> String {
    let text = String(n)
    let negative = text.hasPrefix("-")
    let digits = Array(negative ? text.dropFirst() : Substring(text))
    var out = negative ? "-" : ""
    for (i, d) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(d)
    }
    return out
}
