// ManPage.swift: `memdir help --man`: the roff man page (section 1), generated from the same
// declarations as --help (each Command's name, summary, usage, discussion and OptionSpecs) and
// from the tables below (environment, exit statuses), so the page and the help cannot drift.

/// The environment memdir and libmemtrack.so read: one table for the man page. README's
/// Configuration table and the DocC catalog's Configuration article say the same, in the same
/// order (DocumentationTests holds the three together).
public enum Environment {
    public struct Variable: Sendable {
        public var name: String
        public var defaultValue: String?
        public var meaning: String
    }

    public static let variables: [Variable] = [
        // Read by libmemtrack.so when the program starts.
        Variable(name: "MEM_DIR", defaultValue: "mem", meaning: "Where run directories go (created 0700 if missing). Use an absolute path for programs that change directory."),
        Variable(name: "MEM_SETTLE_MS", defaultValue: "50", meaning: "A block becomes a record only once it has lived this long; 0 is synchronous mode (capped at 600000)."),
        Variable(name: "MEM_DEPTH", defaultValue: "12", meaning: "Return addresses recorded per block, 1 to 32."),
        Variable(name: "MEM_FREERES", defaultValue: "1", meaning: "At exit, free glibc's and libstdc++'s own buffers first, as valgrind does (with other threads alive, only while they are held stopped); 0 for the raw view."),
        Variable(name: "MEM_ALLOW_UNSAFE_DIR", defaultValue: nil, meaning: "1 lets the tracker use a MEM_DIR that is a symbolic link or belongs to another user; otherwise such a MEM_DIR is refused."),
        Variable(name: "MEM_QUARANTINE", defaultValue: "8388608", meaning: "Bytes of freed blocks held back from reuse, so a stale free is still caught; 0 turns it off."),
        Variable(name: "MEM_COUNTERS", defaultValue: "1", meaning: "Keep the counters file (memdir stats, the totals of memdir watch); 0: no counting."),
        Variable(name: "MEM_LEAK_CHECK", defaultValue: "1", meaning: "At exit, classify every live block as valgrind does (definitely, indirectly, possibly lost, still reachable); 0 turns it off."),
        Variable(name: "MEM_TRACE_AFTER", defaultValue: "0", meaning: "Seconds after start before blocks are recorded (skips start-up; capped at 86400)."),
        Variable(name: "MEM_MAPPINGS", defaultValue: "shared", meaning: "Which anonymous and /dev/zero mappings are tracked: shared (MAP_SHARED only) or all."),
        Variable(name: "MEM_SETTLE_BACKLOG_MS", defaultValue: "5000", meaning: "The longest a block waits while the writer thread is behind (more blocks wait than it writes in one settle time), shorter as MEM_BACKLOG fills (capped at 600000)."),
        Variable(name: "MEM_TRACE_CHILDREN", defaultValue: "yes", meaning: "no: processes whose parent is not MEM_TRACE_PARENT restart once before main without libmemtrack.so, and run untraced with everything they start (memdir run sets no unless --trace-children=yes)."),
        Variable(name: "MEM_TRACE_CHILDREN_SKIP", defaultValue: nil, meaning: "Comma-separated patterns (* and ?) of executables not to trace, nor anything they start (--trace-children-skip)."),
        Variable(name: "MEM_TRACE_PARENT", defaultValue: nil, meaning: "The pid whose children are the program (memdir run sets its own); the program and what it execs in place are traced."),
        Variable(name: "MEM_BACKLOG", defaultValue: "134217728", meaning: "Bytes of memory for records waiting for the writer thread; 0: no backlog."),
        // Read by memdir.
        Variable(name: "MEMDIR_LIBRARY", defaultValue: nil, meaning: "The libmemtrack.so memdir run loads, instead of the one found beside the memdir executable."),
        Variable(name: "MEMDIR_ADDR2LINE", defaultValue: nil, meaning: "The addr2line (a path or a name on PATH) for the modules of another machine's records, e.g. aarch64 records read on x86-64; the --addr2line option wins over it."),
        Variable(name: "TMPDIR", defaultValue: nil, meaning: "Where memdir run makes its records directory when set (else /dev/shm, else /tmp)."),
        Variable(name: "PATH", defaultValue: nil, meaning: "Where addr2line (binutils) is looked for, to resolve locations, and the program of memdir run."),
        Variable(name: "NO_COLOR", defaultValue: nil, meaning: "When set and not empty, no colour in the text output (as --color=never)."),
        Variable(name: "TERM", defaultValue: nil, meaning: "dumb: no colour and no full-screen memdir watch."),
    ]
}

public enum ManPage {
    /// The statuses memdir exits with: MemdirError's (the status from the error itself) and the
    /// outcomes that are not errors.
    public static var exitStatuses: [(status: String, meaning: String)] {
        let errors: [(MemdirError, String)] = [
            (.usage(""), "Usage error: unknown option or subcommand, missing or invalid value."),
            (.directoryUnreadable(path: "", reason: ""), "The records directory is missing or unreadable."),
            (.noRecords(path: ""), "The directory holds no tracker records at all."),
            (.malformedRecord(path: "", reason: ""), "A record is malformed or truncated (the report of what parsed is printed first)."),
            (.unsupportedVersion(path: "", version: ""), "A record's or file's format version is not supported, or a file is not of the kind expected (a report given as a snapshot)."),
            (.addr2lineMissing, "addr2line was not found on PATH."),
            (.addr2lineUnusable(value: "", setting: "", reason: ""), "--addr2line (or MEMDIR_ADDR2LINE) names no executable file."),
            (.libraryNotFound(searched: []), "libmemtrack.so was not found (run)."),
            (.suppressionsUnreadable(path: "", reason: ""), "A --suppressions file cannot be read."),
            (.malformedSuppressions(path: "", line: 0, reason: ""), "A --suppressions file is malformed (the line is named)."),
            (.outputUnwritable(path: "", reason: ""), "The --json-file (or other output file) cannot be written, or the --json-fd is not open for writing."),
            (.noCounters(path: ""), "stats: no run directory has a counters file."),
            (.processNotTraced(pid: "", reason: ""), "watch/check PID: no such process, or it does not run under libmemtrack.so."),
            (.processNotRunning(path: "", state: ""), "check: the process is not running."),
            (.checkTimedOut(path: "", seconds: 0), "check: no answer within --timeout."),
            (.programNotExecutable(path: "", reason: ""), "run: the program was found but cannot be executed."),
            (.programNotFound(""), "run: the program was not found."),
            (.system(call: "", path: "", reason: ""), "A system call failed in a way none of the others describes; clean: a directory could not be removed."),
            (.binaryUnreadable(path: "", reason: ""), "--binary does not exist or cannot be read."),
            (.binaryMismatch(path: "", recorded: "", found: "", executable: ""), "--binary is another build than the program that ran (its build-id differs; --ignore-build-id uses it anyway)."),
        ]
        return [("0", "Success, including a clean run; list and resolve also exit 0 when they find leaks."),
                ("23", "run: the gate failed (lost blocks of the --errors-for-leak-kinds kinds, bad frees, or an incomplete record); N with --error-exitcode N."),
                ("other", "run: the program's own exit status, 128+signal if it was killed.")]
            + errors.sorted { $0.0.exitStatus < $1.0.exitStatus }.map { (String($0.0.exitStatus), $0.1) }
    }

    static let description = [
        """
        libmemtrack.so is loaded into any program with LD_PRELOAD, no rebuild needed. It keeps one file per live
        heap block, named by the block's address, in a records directory under MEM_DIR that can be listed while
        the program runs and that survives a crash. When a free finds no live block at an address, the tracker
        reports a double free or an invalid free instead of corrupting the heap. When the program ends, what is
        left is exactly its leaks, classified as valgrind does.
        """,
        """
        memdir reads the records, groups the blocks by where they were allocated and names each place as
        function file:line with addr2line(1). memdir run does all of it in one step. Its text report goes to
        stderr, so the program's stdout stays clean.
        """,
        """
        Every block still allocated at a normal exit has a kind, in valgrind memcheck's words: definitely lost
        (nothing points to it), indirectly lost (only lost blocks point to it), possibly lost (only pointers into
        its interior reach it) or still reachable; a block of a process that crashed, exec'd or still runs is
        not classified. By default memdir run fails (status 23) when, after suppressions, there are definitely or
        indirectly lost blocks, bad frees, or a record the tracker could not complete.
        """,
    ]

    static let files = [
        """
        A run directory: one per traced process, mode 0700, with the files process, modules, status, stacks,
        counters, leak-check, one 0xADDRESS.mem symlink per live block and one bad-SEQ.free file per bad free.
        """,
        "The records directory of memdir run (under TMPDIR when it is set, /tmp when /dev/shm is missing).",
        """
        The tracker memdir run loads: beside the real path of the memdir executable, or in lib/memdir/ beside
        its bin directory; MEMDIR_LIBRARY overrides both.
        """,
    ]

    public static func render(commands: [any Command.Type]) -> String {
        var page = """
            .\\" Generated by memdir help --man (memdir \(MemdirVersion.current)); edit the declarations, not this page.
            .TH MEMDIR 1 \(MemdirVersion.date) "memdir \(MemdirVersion.current)" "User Commands"
            .\\" Options and paths must not be hyphenated or stretched: they are typed as printed.
            .nh
            .ad l
            .SH NAME
            memdir \\- find memory leaks and double frees in unmodified Linux programs
            .SH SYNOPSIS

            """
        for (i, c) in commands.enumerated() {
            let rest = c.usage.hasPrefix("memdir \(c.name)") ? String(c.usage.dropFirst("memdir \(c.name)".count)) : " " + c.usage
            page += (i > 0 ? ".PP\n" : "") + ".B memdir \(c.name)\n\(text(rest.trimmingLeadingSpaces))\n"
        }
        page += """
            .PP
            .B memdir
            .RB [ \\-\\-help | \\-\\-version ]
            .SH DESCRIPTION
            \(text(description[0]))
            .PP
            \(text(description[1]))
            .PP
            \(text(description[2]))
            .SH OPTIONS
            .TP
            .B \\-h, \\-\\-help
            Show help information (also after a subcommand).
            .TP
            .B \\-\\-version
            Print the version and the record and report formats this memdir reads
            and writes.
            .SH COMMANDS

            """
        for c in commands {
            page += ".SS \(c.name)\n\(text(c.summary))\n.PP\n.B Usage:\n\(text(c.usage))\n"
            if !c.discussion.isEmpty { page += ".PP\n\(text(c.discussion))\n" }
            if !c.options.isEmpty { page += ".PP\nOptions:\n" }
            for o in c.options {
                page += ".TP\n.B \(text(o.name))"
                if let v = o.value { page += " \\fI\(text(v))\\fR" }
                page += "\n\(text(o.help + (o.repeatable ? " (repeatable)" : "")))\n"
            }
        }
        page += ".SH ENVIRONMENT\n"
        for v in Environment.variables {
            page += ".TP\n.B \(text(v.name))\n\(text(v.meaning + (v.defaultValue.map { " Default: \($0)." } ?? "")))\n"
        }
        page += ".SH EXIT STATUS\n"
        for (status, meaning) in exitStatuses { page += ".TP\n.B \(status)\n\(text(meaning))\n" }
        page += """
            .PP
            Errors are printed once each on stderr as
            .BR "memdir: error:" " message."
            .SH FILES
            .TP
            .I MEM_DIR/PID/
            \(text(files[0]))
            .TP
            .I /dev/shm/memdir\\-run\\-XXXXXX/
            \(text(files[1]))
            .TP
            .I PREFIX/lib/memdir/libmemtrack.so
            \(text(files[2]))
            .SH EXAMPLES
            Run a program and print its leaks and bad frees, resolved to file:line:
            .PP
            .RS
            .nf
            memdir run \\-\\- ./myprog args
            .fi
            .RE
            .PP
            Trace any program unmodified, then read the records, while it runs or after:
            .PP
            .RS
            .nf
            LD_PRELOAD=/usr/local/lib/memdir/libmemtrack.so MEM_DIR=$PWD/mem ./myprog
            memdir list mem
            memdir resolve mem \\-\\-binary ./myprog
            .fi
            .RE
            .PP
            Watch a long-running process and compare two moments:
            .PP
            .RS
            .nf
            memdir watch 4242
            memdir snapshot mem \\-o before.json
            memdir snapshot mem \\-o after.json
            memdir diff before.json after.json
            .fi
            .RE
            .PP
            In CI: fail on leaks, with valgrind's suppressions, and a report for
            valgrind's XML readers:
            .PP
            .RS
            .nf
            memdir run \\-\\-suppressions project.supp \\-\\-xml\\-file memdir\\-%p.xml \\-\\- ./tests
            .fi
            .RE
            .PP
            Install the man page and shell completion:
            .PP
            .RS
            .nf
            memdir help \\-\\-man > /usr/local/share/man/man1/memdir.1
            memdir completion bash > /etc/bash_completion.d/memdir
            .fi
            .RE
            .SH SEE ALSO
            .BR valgrind (1),
            .BR heaptrack (1),
            .BR addr2line (1),
            .BR ld.so (8)
            .PP
            The reference, with the record format, how the tracker works, its
            reliability and its limits, is the DocC catalog in the memdir sources,
            Sources/MemdirKit/MemdirKit.docc; README.md says how to install memdir.

            """
        return page
    }

    /// Text for roff lines: backslashes and dashes escaped, filled into lines of at most 78
    /// bytes (roff fills them again; mandoc's lint asks for short source lines), each made safe
    /// from being read as a request (a leading `.` or `'`).
    static func text(_ s: String) -> String {
        var escaped = ""
        for c in s {
            switch c {
            case "\\": escaped += "\\e"
            case "-": escaped += "\\-"
            case "\n": escaped += " "
            default: escaped.append(c)
            }
        }
        var lines: [String] = []
        var line = ""
        for word in escaped.split(separator: " ", omittingEmptySubsequences: true) {
            if !line.isEmpty && line.utf8.count + 1 + word.utf8.count > 78 {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.map { $0.hasPrefix(".") || $0.hasPrefix("'") ? "\\&" + $0 : $0 }.joined(separator: "\n")
    }
}

extension String {
    var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}
