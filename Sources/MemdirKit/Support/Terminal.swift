// Terminal.swift: what `memdir watch` needs of a terminal: its width, the keyboard in single-key
// mode (restored on the way out), and Ctrl-C / SIGTERM turned into a flag the loop reads, with
// the terminal restored before the process ends if the loop does not stop in time.

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

/// SIGINT, SIGTERM and SIGALRM handled for a loop (see `watchInterrupted`), from `init` until
/// `restore()`; the keyboard's saved mode is what a forced exit puts back.
struct Interrupts {
    private let oldInt: sighandler_t?, oldTerm: sighandler_t?, oldAlarm: sighandler_t?

    /// Whether SIGINT or SIGTERM came since `init`.
    static var received: Bool { watchInterrupted != 0 }

    init(restoring keyboard: TerminalKeys?) {
        watchInterrupted = 0
        if let keyboard, keyboard.isActive { watchTerminal = keyboard.saved; watchTerminalSaved = 1 }
        oldInt = signal(SIGINT) { sig in if watchInterrupted != 0 { watchLeave(sig) }; watchInterrupted = sig; alarm(2) }
        oldTerm = signal(SIGTERM) { sig in if watchInterrupted != 0 { watchLeave(sig) }; watchInterrupted = sig; alarm(2) }
        oldAlarm = signal(SIGALRM) { _ in watchLeave(watchInterrupted) }
        // A parent may have started watch with these blocked (a child inherits the mask; test
        // runners' threads often block everything): watch handles them, so it takes them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for s in [SIGINT, SIGTERM, SIGALRM] { sigaddset(&handled, s) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    /// The handlers as they were; no forced exit any more.
    func restore() {
        alarm(0); signal(SIGINT, oldInt); signal(SIGTERM, oldTerm); signal(SIGALRM, oldAlarm); watchTerminalSaved = 0
    }
}

/// The width of the terminal on `fd` in columns; 80 when it does not say.
func terminalWidth(_ fd: Int32) -> Int {
    var size = winsize()
    return ioctl(fd, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
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
