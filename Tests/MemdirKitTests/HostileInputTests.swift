// HostileInputTests.swift: issue 17 items 14-18 and the CLI side of 12, one reproducer each:
// FIFOs under record names, sparse multi-GiB files, extreme numbers, one bad counters file among
// good ones, control bytes in names, and every incompleteness the CLI can see. Also the
// regressions the fuzzer (Tests/EndToEndTests/FuzzTests.swift) found.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import MemdirKit

/// A counters file as the tracker writes it (counters.c): 4 KiB of header, 129 slots of 128 words.
func trackerCounters(header: [Int: UInt64] = [:], slotWords: [(slot: Int, word: Int, value: UInt64)] = []) -> [UInt8] {
    var words = [UInt64](repeating: 0, count: 512 + 129 * 128)
    words[4] = 129; words[5] = 128; words[6] = 4096; words[7] = 65; words[8] = 65536
    for (i, v) in header { words[i] = v }
    for s in slotWords { words[512 + s.slot * 128 + s.word] = s.value }
    var bytes = words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
    let magic = Array("memtrack/1 counters\n".utf8)
    bytes.replaceSubrange(0..<magic.count, with: magic)
    return bytes
}

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// A sparse file: `prefix`, then zeros up to `size` bytes (no disk used).
func sparseFile(_ path: String, prefix: String, size: Int) {
    unlink(path)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0)
    _ = prefix.withCString { write(fd, $0, strlen($0)) }
    ftruncate(fd, off_t(size))
    close(fd)
}

func fifo(_ path: String) {
    unlink(path)
    precondition(mkfifo(path, 0o600) == 0)
}

/// The limit only catches a reader that blocks forever (a FIFO opened and waited on): it is
/// far above the time a test takes, because the end-to-end tests, which run in the same process
/// and block the pool's threads while their programs run (one per core), can keep these tests
/// from being scheduled for the length of that suite (2.5 minutes here). One minute made every
/// test of this suite fail in a fresh clone's run.
@Suite("Hostile inputs", .timeLimit(.minutes(10)))
struct HostileInputTests {
    /// A run directory with one lost block, a leak-check and a counters file.
    func goodRun(_ t: TempDir, _ name: String = "1") -> String {
        let run = t.run(name)
        t.block(name, address: 0x10, size: 10, seq: 1, stack: [0x401100])
        t.leakCheck(name, seq: 1, lost: [(0x10, "definitely")])
        FileManager.default.createFile(atPath: run + "/counters", contents: Data(trackerCounters(slotWords: [(0, 0, 3)])))
        return run
    }

    // ---- 14: FIFOs ----------------------------------------------------------------------------

    @Test("a FIFO under any record's name: list, stats and snapshot end at once with 'not a regular file' (status 5)",
          arguments: ["leak-check", "stacks", "sources", "status", "process", "modules", "0x10.mem", "bad-3.free", "1.map"])
    func fifoRecords(name: String) throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        fifo(run + "/" + name)
        let c = Captured()
        #expect(MemdirCLI.main(["list", run], console: c.console) == 5, "\(c.err)")
        #expect(c.err.contains("not a regular file"), "\(c.err)")
        #expect(try ReportBuilder.build(directory: run, options: ReportOptions()).processes[0].recordIncomplete)
        let snapshot = Captured()
        #expect(MemdirCLI.main(["snapshot", run, "-o", t.path + "/snap.json"], console: snapshot.console) == 5)
    }

    @Test("a FIFO as an on-demand check's answer (leak-check-SEQ) is unreadable, not waited on")
    func fifoCheckAnswer() throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        fifo(run + "/leak-check-7")
        #expect(LeakCheckParser.read(run + "/leak-check-7").isUnreadable)
        var options = ReportOptions()
        options.leakCheckNames = ["1": "leak-check-7"]
        let p = try ReportBuilder.build(directory: run, options: options).processes[0]
        #expect(p.problems == [.malformedRecord(path: run + "/leak-check-7", reason: "not a regular file")])
        #expect(p.classification.reason == "leak-check record unreadable" && p.recordIncomplete)
    }

    @Test("a FIFO named counters: stats and the watch sample refuse it without blocking")
    func fifoCounters() throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        fifo(run + "/counters")
        let c = Captured()
        #expect(MemdirCLI.main(["stats", run], console: c.console) == 5)
        #expect(c.err == "memdir: error: malformed record \(run)/counters: not a regular file\n")
        #expect(ProcessWatch(runDirectory: run).sample().counters == nil)
        #expect(throws: MemdirError.malformedRecord(path: run + "/counters", reason: "not a regular file")) {
            try CountersReader.read(runDirectory: run)
        }
    }

    @Test("a snapshot or history file that is a FIFO or /dev/zero is refused")
    func fifoUserFiles() throws {
        let t = TempDir(); defer { t.remove() }
        fifo(t.path + "/snap.json")
        #expect(throws: MemdirError.malformedRecord(path: t.path + "/snap.json", reason: "not a regular file")) {
            try Snapshot.load(path: t.path + "/snap.json")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/dev/zero", reason: "not a regular file")) {
            try WatchHistory.load(path: "/dev/zero")
        }
    }

    // ---- 15: sparse and huge files ------------------------------------------------------------

    @Test("sparse GiB files (stacks, leak-check, sources, counters) are refused after one read, in bounded memory")
    func sparseFiles() throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        let before = peakRSSMiB()
        let start = Date()
        sparseFile(run + "/stacks", prefix: "memtrack/2 stacks\n", size: 1 << 30)
        #expect(throws: MemdirError.malformedRecord(path: run + "/stacks", reason: "line longer than 2048 bytes")) {
            try StackTable.read(runDirectory: run)
        }
        unlink(run + "/stacks")
        sparseFile(run + "/leak-check", prefix: "memtrack/1 leak-check\nresult complete\n", size: 1 << 30)
        guard case .unreadable(.malformedRecord(_, "line longer than 16384 bytes")) = LeakCheckParser.read(run + "/leak-check") else {
            Issue.record("a sparse leak-check was not refused"); return
        }
        sparseFile(run + "/sources", prefix: "1 a.c\tf\n", size: 1 << 30)
        #expect(throws: MemdirError.malformedRecord(path: run + "/sources", reason: "record too large (1073741824 bytes; at most 67108864)")) {
            try StackTable.read(runDirectory: run)
        }
        unlink(run + "/sources")
        sparseFile(run + "/counters", prefix: "memtrack/1 counters\n", size: 8 << 30)
        #expect(throws: MemdirError.malformedRecord(path: run + "/counters", reason: "record too large (8589934592 bytes; at most 1048576)")) {
            try CountersReader.read(runDirectory: run)
        }
        // The whole report over these files: one error each, nothing read whole.
        let c = Captured()
        #expect(MemdirCLI.main(["list", run], console: c.console) == 5)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(peakRSSMiB() - before < 64, "peak RSS grew by \(peakRSSMiB() - before) MiB")
    }

    @Test("one hostile stack id (2^28 - 1) does not make the index allocate gigabytes")
    func hostileStackID() throws {
        let table = try StackTable.parse("memtrack/2 stacks\n1 0x10\n268435455 0x20,0x30\n", path: "s")
        #expect(table.spans.count < 100_000)
        #expect(table.stack(268_435_455).map(Array.init) == [0x20, 0x30])
        #expect(table.stack(1).map(Array.init) == [0x10])
        #expect(table.stack(2) == nil && table.count == 2)
        #expect(throws: MemdirError.malformedRecord(path: "s", reason: "bad stack id '268435456'")) {
            try StackTable.parse("memtrack/2 stacks\n268435456 0x20\n", path: "s")
        }
    }

    // ---- 16: extreme numbers ------------------------------------------------------------------

    @Test("extreme counters header words are a malformed record, never a trap", arguments: [4, 5, 6, 7])
    func extremeCountersHeader(word: Int) throws {
        for value in [UInt64.max, UInt64(Int64.max), UInt64(bitPattern: Int64.min), 1 << 40] + (word == 7 ? [66] : [0]) {
            #expect(throws: MemdirError.malformedRecord(path: "c", reason: "counters layout does not fit the file")) {
                try CountersReader.parse(trackerCounters(header: [word: value]), path: "c")
            }
        }
    }

    @Test("extreme counter values: stats, watch and snapshot render them without trapping")
    func extremeCounterValues() throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        let extreme: [(slot: Int, word: Int, value: UInt64)] = [
            (0, 9, .max), (1, 9, .max), (0, 10, .max),                  // frees
            (0, 0, .max), (1, 0, .max),                                 // allocations
            (0, 17, UInt64(bitPattern: Int64.min)), (1, 17, UInt64(bitPattern: Int64.min)),   // heap
            (0, 18, UInt64(Int64.max)), (1, 18, UInt64(Int64.max)),     // live blocks
            (0, 32 + 3, .max), (1, 32 + 3, .max), (0, 32 + 64, .max),   // histogram
        ]
        FileManager.default.createFile(atPath: run + "/counters",
                                       contents: Data(trackerCounters(header: [9: UInt64(Int64.max), 10: .max], slotWords: extreme)))
        let c = Captured()
        #expect(MemdirCLI.main(["stats", run], console: c.console) == 0, "\(c.err)")
        #expect(c.out.contains("frees"))
        #expect(MemdirCLI.main(["stats", run, "--json"], console: c.console) == 0)
        let watch = ProcessWatch(runDirectory: run)
        let first = watch.sample(now: 1000)
        FileManager.default.createFile(atPath: run + "/counters", contents: Data(trackerCounters(header: [9: UInt64(bitPattern: Int64.min)])))
        let second = watch.sample(now: 1001)
        for s in [first, second] { _ = WatchFormatter.line(s); _ = WatchFormatter.jsonLine(s) }
        #expect(WatchFormatter.screen([second], groups: [:], interval: 1, width: 400).contains("allocs/s"))
        #expect(MemdirCLI.main(["snapshot", run, "-o", t.path + "/s.json"], console: c.console) == 0)
    }

    @Test("diff: taken_unix_ms = -2^63, negative counts and a stray attributed frame are malformed (status 5)")
    func extremeSnapshots() throws {
        let t = TempDir(); defer { t.remove() }
        let run = goodRun(t)
        let c = Captured()
        #expect(MemdirCLI.main(["snapshot", run, "-o", t.path + "/a.json"], console: c.console) == 0)
        let good = try String(contentsOfFile: t.path + "/a.json", encoding: .utf8)
        let taken = good.range(of: #""taken_unix_ms": [0-9]+"#, options: .regularExpression)!
        for (name, text) in [
            ("time", good.replacingCharacters(in: taken, with: #""taken_unix_ms": -9223372036854775808"#)),
            ("future", good.replacingCharacters(in: taken, with: #""taken_unix_ms": 9223372036854775807"#)),
            ("blocks", good.replacingOccurrences(of: #""blocks": 1"#, with: #""blocks": -9223372036854775808"#)),
            ("frame", good.replacingOccurrences(of: #""attributed_frame": 0"#, with: #""attributed_frame": 99"#)),
        ] {
            t.write("\(name).json", text)
            let d = Captured()
            #expect(MemdirCLI.main(["diff", t.path + "/a.json", t.path + "/\(name).json"], console: d.console) == 5, "\(name): \(d.err)")
            #expect(d.err.hasPrefix("memdir: error: malformed record \(t.path)/\(name).json: snapshot field"), "\(name): \(d.err)")
        }
    }

    @Test("deeply nested JSON is refused, not a stack overflow")
    func deepJSON() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(String(repeating: "[", count: 200_000)) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(String(repeating: "{\"a\":", count: 100_000)) }
        #expect((try? JSONParser.parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64))) != nil)
    }

    @Test("leak-check numbers out of range are malformed lines, not traps")
    func leakCheckNumbers() throws {
        #expect(throws: MemdirError.malformedRecord(path: "l", reason: "line 3: number out of range for 'threads'")) {
            try LeakCheckParser.parse(Array("memtrack/1 leak-check\nresult complete\nthreads 18446744073709551615\nend\n".utf8), path: "l")
        }
        #expect(throws: MemdirError.malformedRecord(path: "l", reason: "line 3: bad number for 'seq'")) {
            try LeakCheckParser.parse(Array("memtrack/1 leak-check\nresult complete\nseq 18446744073709551616\nend\n".utf8), path: "l")
        }
    }

    @Test("option durations and block ages saturate instead of trapping")
    func durations() {
        #expect(BlockAge.parseDuration("1e300s") == nil)
        #expect(BlockAge.cutoff(olderThanMs: .max, startUnixMs: Int.max, now: 5) == .min)
        #expect(BlockAge.cutoff(olderThanMs: 10, startUnixMs: 0, now: 100) == 90)
    }

    // ---- 17: one bad counters file ------------------------------------------------------------

    @Test("stats: one malformed counters file is reported, the valid processes are printed (status 5)")
    func oneBadCounters() throws {
        let t = TempDir(); defer { t.remove() }
        _ = goodRun(t, "1")
        let bad = goodRun(t, "2")
        _ = goodRun(t, "3")
        FileManager.default.createFile(atPath: bad + "/counters", contents: Data(trackerCounters(header: [4: .max])))
        let c = Captured()
        #expect(MemdirCLI.main(["stats", t.path], console: c.console) == 5)
        #expect(c.out.components(separatedBy: "process 4242 /home/me/prog (exit 0)").count == 3, "\(c.out)")
        #expect(c.err == "memdir: error: malformed record \(bad)/counters: counters layout does not fit the file\n")
        let j = Captured()
        #expect(MemdirCLI.main(["stats", t.path, "--json"], console: j.console) == 5)
        #expect(j.out.components(separatedBy: "\"run_directory\"").count == 3)
    }

    // ---- 18: control bytes --------------------------------------------------------------------

    static let hostileName = "evil\u{1b}]0;pwned\u{07}\r\nsecond\u{1b}[2J\u{9b}31m"

    @Test("folded stacks: control bytes from names are escaped, a newline cannot split a stack")
    func foldedEscapes() {
        var frame = Frame(address: 0x401100, module: "/p\u{1b}rog", offset: 0x1100)
        frame.symbols = [Symbol(function: Self.hostileName, file: "a.c", line: 3)]
        let names = FoldedFormatter.frameNames([frame, Frame(address: 0x10)])
        let line = names.joined(separator: ";")
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }, "\(line.debugDescription)")
        #expect(names[1] == #"evil\x1b]0:pwned\x07\x0d\nsecond\x1b[2J\x9b31m a.c:3"#)
    }

    @Test("watch lines and the watch screen escape control bytes in names and states")
    func watchEscapes() {
        let sample = WatchSample(runDirectory: "/m/1", pid: 1, exe: Self.hostileName, state: "run\u{1b}[2Jning", timeUnixMs: 0)
        let group = WatchGroup(key: "k", location: Self.hostileName, blocks: 1, bytes: 1, growthSinceStart: 0, growthSinceLast: 0)
        let screen = WatchFormatter.screen([sample], groups: ["/m/1": [group]], interval: 1, width: 200)
        // The screen's own sequences are ESC [ K and ESC [ J only.
        let own = screen.replacingOccurrences(of: "\u{1b}[K", with: "").replacingOccurrences(of: "\u{1b}[J", with: "")
        #expect(!own.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) }, "\(own.debugDescription)")
        #expect(screen.contains(#"evil\x1b]0;pwned\x07\x0d\nsecond"#))
        let line = WatchFormatter.line(sample)
        #expect(!line.dropLast().unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
    }

    @Test("JSON escapes DEL and the C1 controls as well as C0")
    func jsonEscapes() {
        #expect(JSONValue.string("a\u{7f}b\u{9b}c\u{1b}").render() == #""a\u007fb\u009bc\u001b""#)
    }

    // ---- 12: incompleteness the CLI can see ---------------------------------------------------

    func report(_ run: String) throws -> ProcessReport { try ReportBuilder.build(directory: run, options: ReportOptions()).processes[0] }

    @Test("every sign of an incomplete record makes it incomplete; a complete one, and _exit's skipped check, do not")
    func incompleteReasons() throws {
        let t = TempDir(); defer { t.remove() }
        let complete = goodRun(t, "ok")
        #expect(try report(complete).incompleteReasons == [])

        // _exit and MEM_LEAK_CHECK=0 write `result skipped`: not a fault.
        let skipped = t.run("skipped")
        t.leakCheck("skipped", seq: 0, lost: [], result: "skipped _exit")
        #expect(try report(skipped).incompleteReasons == [])

        let noCheck = t.run("nocheck")
        #expect(try report(noCheck).incompleteReasons == ["no leak-check record after a normal exit"])

        let cut = t.run("cut")
        t.leakCheck("cut", seq: 1, lost: [], end: false)
        #expect(try report(cut).incompleteReasons == ["leak-check record cut short (no end line)"])

        let failed = t.run("failed")
        t.leakCheck("failed", seq: 1, lost: [], result: "failed out of memory")
        #expect(try report(failed).incompleteReasons == ["leak check failed: out of memory"])

        let warned = t.run("warned", status: "state exit\ncode 0\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n"
                                + "error writing the leak check: No space left on device\n")
        t.leakCheck("warned", seq: 0, lost: [])
        #expect(try report(warned).incompleteReasons == ["the tracker warned: writing the leak check: No space left on device"])

        let noStatus = goodRun(t, "nostatus")
        unlink(noStatus + "/status")
        #expect(try report(noStatus).incompleteReasons == ["no status record", "1 record file could not be read"])

        let unreadable = goodRun(t, "unreadable")
        t.write("unreadable/0x20.mem", "memtrack/1 block address=0x20 size=zz\n")
        #expect(try report(unreadable).incompleteReasons == ["1 record file could not be read"])

        // `running`, and the process is gone (a child reaped here: its pid is free).
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        let gone = t.run("gone", pid: Int(pid), status: "state running\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n")
        #expect(try report(gone).incompleteReasons
                == ["state running, but process \(pid) is gone: its final status was never written (SIGKILL, or no room or permission to write it)"])
        // Still running (this process): not a fault.
        let alive = t.run("alive", pid: Int(getpid()), status: "state running\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n")
        #expect(try report(alive).incompleteReasons == [])

        // The gate and the words of the report.
        let c = Captured()
        #expect(MemdirCLI.main(["list", noCheck], console: c.console) == 0)
        #expect(c.out.contains("  warning: record incomplete: no leak-check record after a normal exit\n"))
        #expect(c.out.hasSuffix("no leaks, no bad frees recorded, but the record is incomplete in 1 of 1 process\n"))
        let j = Captured()
        #expect(MemdirCLI.main(["list", noCheck, "--json"], console: j.console) == 0)
        #expect(j.out.contains("\"clean\": false"))
        #expect(j.out.contains("\"record_incomplete\": ["), "\(j.out)")
        #expect(j.out.contains("\"no leak-check record after a normal exit\""), "\(j.out)")
    }
}

extension LeakCheckParser.ReadResult {
    var isUnreadable: Bool { if case .unreadable = self { true } else { false } }
}
