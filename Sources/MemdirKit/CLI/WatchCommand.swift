// WatchCommand.swift: `memdir watch [DIR|PID]`: a live view of running processes, like top.
// Totals come from the counters file every interval; the per-group view from a rescan of the
// run directory every few intervals. On a terminal the screen is redrawn in place and `q` or
// Ctrl-C quits (the terminal is restored); otherwise one line per process per interval.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

/// Set by the SIGINT/SIGTERM handler (to the signal); the loop ends at its next wake. If it
/// does not end within 2 s (a rescan of a huge directory), SIGALRM ends the process, as does a
/// second signal: the terminal is restored from `watchTerminal` first (async-signal-safe calls).
nonisolated(unsafe) private var watchInterrupted: sig_atomic_t = 0
nonisolated(unsafe) private var watchTerminal = termios()
nonisolated(unsafe) private var watchTerminalSaved: sig_atomic_t = 0

private func watchLeave(_ signal: Int32) -> Never {
    if watchTerminalSaved != 0 {
        tcsetattr(0, TCSANOW, &watchTerminal)
        let show: [UInt8] = [0x1b, 0x5b, 0x3f, 0x32, 0x35, 0x68, 0x0a]   // ESC [ ? 25 h, newline
        _ = show.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
    _exit(128 + signal)
}

public struct WatchCommand: Command {
    public static let name = "watch"
    public static let summary = "Watch running processes live: heap, peak, allocation rate, growing groups."
    public static let usage = "memdir watch [DIR|PID] [--interval AGE] [--count N] [--rescan N] [--top N] [--json] [--by caller|frame|stack]"
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
    ]

    public var target: String
    public var intervalMs: Double
    public var count: Int?
    public var rescan: Int
    public var top: Int
    public var flags: ReportFlags

    public init(_ a: ParsedArguments) throws(MemdirError) {
        guard a.positionals.count <= 1 else { throw .usage("unexpected argument '\(a.positionals[1])'") }
        target = a.positionals.first ?? "./mem"
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
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        let watches = try LiveTarget.runDirectories(target).map { ProcessWatch(runDirectory: $0) }
        let addr2line = try? Addr2Line.locate()
        let screen = !flags.json && isatty(1) != 0 && (getenv("TERM").map { String(cString: $0) } ?? "dumb") != "dumb"
        let keyboard = screen ? TerminalKeys() : nil
        defer { keyboard?.restore() }
        watchInterrupted = 0
        if let keyboard, keyboard.isActive { watchTerminal = keyboard.saved; watchTerminalSaved = 1 }
        let oldInt = signal(SIGINT) { sig in if watchInterrupted != 0 { watchLeave(sig) }; watchInterrupted = sig; alarm(2) }
        let oldTerm = signal(SIGTERM) { sig in if watchInterrupted != 0 { watchLeave(sig) }; watchInterrupted = sig; alarm(2) }
        let oldAlarm = signal(SIGALRM) { _ in watchLeave(watchInterrupted) }
        // A parent may have started watch with these blocked (a child inherits the mask; test
        // runners' threads often block everything): watch handles them, so it takes them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for s in [SIGINT, SIGTERM, SIGALRM] { sigaddset(&handled, s) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        defer { alarm(0); signal(SIGINT, oldInt); signal(SIGTERM, oldTerm); signal(SIGALRM, oldAlarm); watchTerminalSaved = 0 }

        var groups: [String: [WatchGroup]] = [:]
        var samplesTaken = 0
        var lastRescan = -1
        var rescanCostMs = 0.0
        var lastRescanAt = 0
        if screen { console.out("\u{1B}[?25l\u{1B}[2J") }   // hide the cursor, clear once; then redraw in place
        defer { if screen { console.out("\u{1B}[?25h") } }
        while watchInterrupted == 0 {
            var samples = watches.map { $0.sample() }
            if watchInterrupted != 0 { break }
            let now = samples.first?.timeUnixMs ?? BlockAge.nowUnixMs()
            // Rescan on the first sample, then every `rescan` samples, but never sooner than
            // 24 times the CPU time the last rescan took (on all cores): a directory of a
            // million blocks costs seconds, and watch must stay under a tenth of one core, the
            // first rescan included (at 12 times, a minute of a million blocks took 9.6 %).
            let due = rescan > 0 && (lastRescan < 0 || (samplesTaken - lastRescan >= rescan && Double(now - lastRescanAt) >= 24 * rescanCostMs))
            if due {
                let start = Self.cpuMilliseconds()
                for (i, w) in watches.enumerated() where watchInterrupted == 0 {
                    let top = w.groups(top: top, grouping: flags.grouping, rules: flags.rules, addr2line: addr2line)
                    groups[w.runDirectory] = top
                    samples[i].groups = top
                }
                rescanCostMs = Self.cpuMilliseconds() - start
                lastRescan = samplesTaken
                lastRescanAt = now
            }
            samplesTaken += 1
            if screen {
                console.out("\u{1B}[H" + WatchFormatter.screen(samples, groups: groups, interval: intervalMs / 1000, width: terminalWidth()))
            } else {
                console.out(samples.map { flags.json ? WatchFormatter.jsonLine($0) : WatchFormatter.line($0) }.joined())
            }
            if let count, samplesTaken >= count { break }
            if samples.allSatisfy({ $0.state != nil && $0.state != "running" }) { break }
            if let keyboard {
                if keyboard.waitForQuit(milliseconds: Int32(clamping: Int(intervalMs))) { break }
            } else {
                var pause = timespec(tv_sec: Int(intervalMs) / 1000, tv_nsec: (Int(intervalMs) % 1000) * 1_000_000)
                nanosleep(&pause, nil)   // a signal cuts it short; the loop then sees the flag
            }
        }
        return 0
    }

    /// User and system CPU time of this process (every thread), in ms.
    static func cpuMilliseconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
    }

    func terminalWidth() -> Int {
        var size = winsize()
        return ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
    }
}

/// The keyboard in a mode where single keys arrive without Enter and are not echoed; restored
/// on the way out (also after Ctrl-C, which the loop turns into a normal exit).
final class TerminalKeys {
    private(set) var saved = termios()
    private let active: Bool
    var isActive: Bool { active }

    init() {
        guard isatty(0) != 0, tcgetattr(0, &saved) == 0 else { active = false; return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        raw.c_cc.6 = 0   // VMIN
        raw.c_cc.5 = 0   // VTIME
        active = tcsetattr(0, TCSANOW, &raw) == 0
    }

    /// Waits up to `milliseconds`; true when `q` (or Q) was pressed.
    func waitForQuit(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard active, poll(&entry, 1, milliseconds) > 0 else {
            if !active { _ = poll(nil, 0, milliseconds) }
            return false
        }
        var byte: UInt8 = 0
        while read(0, &byte, 1) == 1 { if byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") { return true } }
        return false
    }

    func restore() { if active { tcsetattr(0, TCSANOW, &saved) } }
}
