// WatchCommand.swift: `memdir watch [DIR|PID]`: a live view of running processes, like top.
// Totals come from the counters file every interval; the per-group view from a rescan of the
// run directory every few intervals. On a terminal the screen is redrawn in place and `q` or
// Ctrl-C quits (the terminal is restored); otherwise one line per process per interval.

public struct WatchCommand: Command {
    public static let name = "watch"
    public static let summary = "Watch running processes live: heap, peak, allocation rate, growing groups."
    public static let usage = "memdir watch [DIR|PID] [--interval AGE] [--count N] [--rescan N] [--top N] [--json] [--by caller|frame|stack] [--addr2line PATH]"
    public static let discussion = """
        DIR (default ./mem) is a MEM_DIR or one run directory; PID is a process running under libmemtrack.so
        (found through MEM_DIR in /proc/PID/environ). On a terminal the view is redrawn in place; q or Ctrl-C
        quits. Otherwise one line per process per interval is printed (JSON lines with --json, where a
        line carries its groups when the directory was rescanned). Ends when every process has ended.
        """
    public static let options = [
        OptionSpec("--interval", value: "AGE", help: "Time between samples (default 1s; 100ms, 2s, 1m...)."),
        OptionSpec("--count", value: "N", help: "Stop after N samples."),
        OptionSpec("--rescan", value: "N", help: "Rescan the directory for the groups every N samples (default 5; 0: never), spaced to use under a tenth of one core."),
        OptionSpec("--top", value: "N", help: "Groups shown per process (default 10)."),
        OptionSpec("--json", help: "JSON lines (schema memdir-watch/1), never a screen."),
        OptionSpec("--by", value: "caller|frame|stack", help: "How groups are formed (default frame)."),
        OptionSpec("--wrapper", value: "NAME", repeatable: true, help: "Also treat function NAME (or prefix NAME*) as an allocation wrapper."),
        Addr2LineFlag.option,
    ]

    public var target: String
    public var intervalMs: Double
    public var count: Int?
    public var rescan: Int
    public var top: Int
    public var flags: ReportFlags
    public var addr2lineFlag: Addr2LineFlag

    public init(_ a: ParsedArguments) throws(MemdirError) {
        target = try a.onlyPositional(default: "./mem")
        intervalMs = try a.value("--interval").map { (t: String) throws(MemdirError) in try BlockAge.option(t, name: "--interval") } ?? 1000
        guard intervalMs >= 1 else { throw .usage("'--interval' must be at least 1ms") }
        func count(_ name: String, min: Int) throws(MemdirError) -> Int? {
            guard let text = a.value(name) else { return nil }
            guard let v = Int(text), v >= min else { throw .usage("invalid value '\(text)' for '\(name)' (expected a whole number >= \(min))") }
            return v
        }
        self.count = try count("--count", min: 1)
        rescan = try count("--rescan", min: 0) ?? 5
        top = try count("--top", min: 1) ?? 10
        flags = try ReportFlags(a)
        addr2lineFlag = Addr2LineFlag(a)
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let chosen = try addr2lineFlag.given()
        let watches = try LiveTarget.runDirectories(target).map { ProcessWatch(runDirectory: $0) }
        let addr2line = chosen ?? (try? Addr2Line.locate())
        let screen = !flags.json && isTerminal(1) && (environmentValue("TERM") ?? "dumb") != "dumb"
        let keyboard = screen ? TerminalKeys() : nil
        defer { keyboard?.restore() }
        let interrupts = Interrupts(restoring: keyboard)
        defer { interrupts.restore() }

        var groups: [String: [WatchGroup]] = [:]
        var samplesTaken = 0
        var lastRescan = -1
        var rescanCostMs = 0.0
        var lastRescanAt = 0
        if screen { console.out("\u{1B}[?25l\u{1B}[2J") }   // hide the cursor, clear once; then redraw in place
        defer { if screen { console.out("\u{1B}[?25h") } }
        while !Interrupts.received {
            var samples = watches.map { $0.sample() }
            if Interrupts.received { break }
            let now = samples.first?.timeUnixMs ?? BlockAge.nowUnixMs()
            // Rescan on the first sample, then every `rescan` samples, but never sooner than
            // 24 times the CPU time the last rescan took (on all cores): a directory of a
            // million blocks costs seconds, and watch must stay under a tenth of one core, the
            // first rescan included (at 12 times, a minute of a million blocks took 9.6 %).
            let due = rescan > 0 && (lastRescan < 0 || (samplesTaken - lastRescan >= rescan && Double(now - lastRescanAt) >= 24 * rescanCostMs))
            if due {
                let start = processCPUMilliseconds()
                for (i, w) in watches.enumerated() where !Interrupts.received {
                    let top = w.groups(top: top, grouping: flags.grouping, rules: flags.rules, addr2line: addr2line)
                    groups[w.runDirectory] = top
                    samples[i].groups = top
                }
                rescanCostMs = processCPUMilliseconds() - start
                lastRescan = samplesTaken
                lastRescanAt = now
            }
            samplesTaken += 1
            if screen {
                console.out("\u{1B}[H" + WatchFormatter.screen(samples, groups: groups, interval: intervalMs / 1000, width: terminalWidth(1)))
            } else {
                console.out(samples.map { flags.json ? WatchFormatter.jsonLine($0) : WatchFormatter.line($0) }.joined())
            }
            if let count, samplesTaken >= count { break }
            if samples.allSatisfy({ $0.state != nil && $0.state != "running" }) { break }
            if let keyboard {
                if keyboard.waitForQuit(milliseconds: Int32(clamping: Int(intervalMs))) { break }
            } else {
                sleep(milliseconds: Int(intervalMs))   // a signal cuts it short; the loop then sees the flag
            }
        }
        return 0
    }
}
