// LongRunningTests.swift: programs that never exit (issue 9): statistics from the counters
// file, snapshots and diffs, --older-than, folded stacks, watch, check and the HTML report,
// all against Examples/server.c driven line by line on its stdin (no sleeps in the tests).

import Foundation
import MemdirKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A tracked program with a pipe on stdin and stdout: send a line, read the answer line.
final class LiveProgram {
    let process = Process()
    private let input = Spawn.pipe(), output = Spawn.pipe()
    private var lines = LineReader()

    init(_ executable: String, _ arguments: [String] = [], tracking: Tracking, extraEnvironment: [String: String] = [:]) throws {
        var env = E2E.cleanEnvironment()
        env.merge(extraEnvironment) { $1 }
        try tracking.apply(to: &env)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try Spawn.run(process)
    }

    var pid: Int32 { process.processIdentifier }

    func readLine() throws -> String {
        guard let line = lines.next(from: output.fileHandleForReading) else { throw HarnessError("the program ended before answering") }
        return line
    }

    /// Sends one command line and returns the program's one-line answer.
    @discardableResult
    func send(_ command: String) throws -> String {
        input.fileHandleForWriting.write(Data((command + "\n").utf8))
        return try readLine()
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { kill9() }
}

/// The JSON object of a successful memdir run.
func memdirJSON(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let run = try memdir(arguments)
    #expect(run.exitedNormally && run.status == 0, "memdir \(arguments): \(run.statusDescription) \(run.stderrText)", sourceLocation: sourceLocation)
    return try parseJSON(run, sourceLocation: sourceLocation)
}

/// The counters of the only process in `memdir stats --json`.
struct StatsView {
    var calls: [String: Int]
    var bytesRequested: Int
    var heapCurrent: Int
    var heapPeak: Int
    var liveBlocks: Int
    var histogram: [Int: Int]   // min size of bucket -> count

    init(_ dir: URL) throws {
        let json = try memdirJSON(["stats", dir.path, "--json"])
        #expect(json["schema"] as? String == "memdir-stats/1")
        let processes = try #require(json["processes"] as? [[String: Any]])
        try #require(processes.count == 1)
        let p = processes[0]
        calls = ((p["calls"] as? [String: Any]) ?? [:]).mapValues { ($0 as? NSNumber)?.intValue ?? -1 }
        bytesRequested = (p["bytes_requested"] as? NSNumber)?.intValue ?? -1
        let heap = (p["heap"] as? [String: Any]) ?? [:]
        heapCurrent = (heap["current"] as? NSNumber)?.intValue ?? -1
        heapPeak = (heap["peak"] as? NSNumber)?.intValue ?? -1
        liveBlocks = (heap["live_blocks"] as? NSNumber)?.intValue ?? -1
        histogram = [:]
        for b in (p["histogram"] as? [[String: Any]]) ?? [] {
            histogram[(b["min"] as? NSNumber)?.intValue ?? -1] = (b["count"] as? NSNumber)?.intValue ?? -1
        }
    }
}

/// The bucket (its smallest size) a request of `size` bytes is counted in: powers of two.
func bucketMin(_ size: Int) -> Int { size == 0 ? 0 : 1 << (Int.bitWidth - size.leadingZeroBitCount - 1) }

extension EndToEnd {
    @Suite struct LongRunning {
        /// Twice: over glibc's allocator (the heap read from its chunk headers), and over another
        /// allocator preloaded after the tracker (Examples/other_allocator.c, whose usable size is
        /// the requested size): the tracker must notice it is not glibc's and ask it instead.
        @Test("stats: calls, bytes, histogram, live blocks and heap equal what the program did; they survive SIGKILL",
              arguments: [false, true])
        func stats(overOtherAllocator: Bool) throws {
            let program = try E2E.example("server")
            try withScratch { scratch in
                var tracking = Tracking(memDir: scratch.memDir)
                if overOtherAllocator {
                    tracking.preloadAfter = [try E2E.example("other_allocator.so")]
                }
                let server = try LiveProgram(program, tracking: tracking)
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                let before = try StatsView(scratch.memDir)
                let n = 40
                let answer = try server.send("work \(n)")
                let heapDelta = try #require(Int(answer.replacingOccurrences(of: "work heap-delta=", with: "")), "\(answer)")
                server.kill9()   // the counters are a mapped file: they outlive the process
                let after = try StatsView(scratch.memDir)

                // What work(n) in Examples/server.c does, counted here independently.
                var sizes = [n * 8]                                      // calloc(n, 8)
                for i in 0..<n { sizes += [i * 7 + 1, (i + 1) * 3, i * 5 + 40] }   // malloc, calloc, realloc
                sizes.append(1000)                                       // posix_memalign
                var histogram: [Int: Int] = [:]
                for s in sizes { histogram[bucketMin(s), default: 0] += 1 }
                let expectedCalls = ["malloc": n, "calloc": n + 1, "realloc": n, "posix_memalign": 1, "free": n + (n + 1) / 2,
                                     "reallocarray": 0, "aligned_alloc": 0, "memalign": 0, "valloc": 0, "pvalloc": 0, "cfree": 0]
                for (name, count) in expectedCalls {
                    #expect((after.calls[name] ?? -1) - (before.calls[name] ?? -1) == count, "\(name)")
                }
                #expect(after.bytesRequested - before.bytesRequested == sizes.reduce(0, +))
                for bucket in Set(histogram.keys).union(after.histogram.keys) {
                    #expect((after.histogram[bucket] ?? 0) - (before.histogram[bucket] ?? 0) == (histogram[bucket] ?? 0), "bucket \(bucket)")
                }
                #expect(after.liveBlocks - before.liveBlocks == 1 + n - (n + 1) / 2 + 1)
                #expect(after.heapCurrent - before.heapCurrent == heapDelta)
                #expect(after.heapPeak >= after.heapCurrent && after.heapPeak >= before.heapPeak)

                let text = try memdir(["stats", scratch.memDir.path])
                #expect(text.status == 0)
                #expect(text.stdoutText.contains("  heap: \(countText(after.heapCurrent)) bytes in \(countText(after.liveBlocks)) live blocks;"), "\(text.stdoutText)")
            }
        }

        @Test("stats: a directory without a counters file is exit status 12")
        func statsWithoutCounters() throws {
            try withScratch { scratch in
                let run = scratch.root.appendingPathComponent("42")
                try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
                try "memtrack/1 status\nstate exit\ncode 0\n".write(to: run.appendingPathComponent("status"), atomically: true, encoding: .utf8)
                let result = try memdir(["stats", run.path])
                #expect(result.status == 12)
                #expect(result.stderrText == "memdir: error: no counters file in \(run.path) (the run had MEM_COUNTERS=0, or was recorded by an older libmemtrack.so)\n")
            }
        }

        @Test("MEM_COUNTERS=0: no counters file (stats says why, exit 12), and the record is otherwise the same")
        func countersOff() throws {
            let program = try E2E.example("seeds")
            let counted = try withScratch { scratch in
                _ = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                return try onlyRunDirectory(scratch.memDir)
            }
            try withScratch { scratch in
                let result = try runTracked(program, [], Tracking(memDir: scratch.memDir),
                                            extraEnvironment: ["MEM_COUNTERS": "0"])
                #expect(result.exitedNormally)
                let run = try onlyRunDirectory(scratch.memDir)
                #expect(!FileManager.default.fileExists(atPath: run.url.appendingPathComponent("counters").path))
                #expect(run.state == "exit" && !run.blocks.isEmpty)
                #expect(run.blockSizes == counted.blockSizes, "\(run.blockSizes) against \(counted.blockSizes)")
                #expect(run.badFrees.values.map(\.kind).sorted() == counted.badFrees.values.map(\.kind).sorted())
                let stats = try memdir(["stats", run.url.path])
                #expect(stats.status == 12)
                #expect(stats.stderrText == "memdir: error: no counters file in \(run.url.path) (the run had MEM_COUNTERS=0, or was recorded by an older libmemtrack.so)\n")
            }
        }

        @Test("snapshot and diff: the growing group, by its resolved line, between two snapshots and against the live directory")
        func snapshotAndDiff() throws {
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 10 64") == "grew 10")
                let a = scratch.root.appendingPathComponent("a.json").path, b = scratch.root.appendingPathComponent("b.json").path
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", a]).status == 0)
                #expect(try server.send("grow 25 64") == "grew 35")
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", b]).status == 0)

                let snap = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b))) as? [String: Any]
                #expect(snap?["schema"] as? String == "memdir-snapshot/1")
                let process = try #require((snap?["processes"] as? [[String: Any]])?.first)
                #expect((process["pid"] as? NSNumber)?.int32Value == server.pid)
                let groups = try #require(process["groups"] as? [[String: Any]])
                #expect(groups.contains { ($0["blocks"] as? NSNumber)?.intValue == 35 && ($0["bytes"] as? NSNumber)?.intValue == 35 * 64 })

                for second in [b, scratch.memDir.path] {
                    let diff = try memdirJSON(["diff", a, second, "--json"])
                    #expect(diff["schema"] as? String == "memdir-diff/1")
                    let p = try #require((diff["processes"] as? [[String: Any]])?.first)
                    let changed = try #require(p["groups"] as? [[String: Any]])
                    #expect(changed.count == 1, "only the growing group changed: \(changed)")
                    let g = try #require(changed.first)
                    #expect(frame(g["location"] as? String ?? "", isAt: grow), "\(g)")
                    #expect((g["bytes_growth"] as? NSNumber)?.intValue == 25 * 64)
                    #expect((g["blocks_growth"] as? NSNumber)?.intValue == 25)
                    #expect((g["bytes_before"] as? NSNumber)?.intValue == 10 * 64)
                }
                let text = try memdir(["diff", a, b])
                let line = try #require(text.stdoutText.split(separator: "\n").first { $0.contains(grow) }, "\(text.stdoutText)")
                #expect(line.hasPrefix("      +1,600      +25  640 -> 2,240 "), "\(line)")

                let missing = try memdir(["diff", a])
                #expect(missing.status == 2)
                try "{\"schema\": \"memdir-snapshot/9\"}".write(toFile: b, atomically: true, encoding: .utf8)
                #expect(try memdir(["diff", a, b]).status == 6)
                try "{\"schema\": ".write(toFile: b, atomically: true, encoding: .utf8)
                #expect(try memdir(["diff", a, b]).status == 5)
            }
        }

        @Test("list --older-than keeps the blocks allocated at least that long ago")
        func olderThan() throws {
            let program = try E2E.example("server")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 3 111") == "grew 3")
                #expect(try server.send("wait 2500") == "waited")    // the program sleeps, not the test
                #expect(try server.send("grow 4 222") == "grew 7")
                // The server is still running: its blocks are not classified yet, so every group
                // of every kind is summed.
                func leakedBytes(_ extra: [String]) throws -> Int {
                    let json = try memdirJSON(["list", scratch.memDir.path, "--json", "--show-leak-kinds", "all"] + extra)
                    let p = (json["processes"] as? [[String: Any]])?.first
                    let groups = (p?["leaks"] as? [[String: Any]]) ?? []
                    return groups.reduce(0) { $0 + ((($1["bytes"] as? NSNumber)?.intValue) ?? 0) }
                }
                let index = 1024 * MemoryLayout<UnsafeRawPointer>.size   // grow's first realloc of its index
                #expect(try leakedBytes([]) == index + 3 * 111 + 4 * 222)
                #expect(try leakedBytes(["--older-than", "1s"]) == index + 3 * 111)
                #expect(try leakedBytes(["--older-than", "1000ms"]) == index + 3 * 111)
                #expect(try leakedBytes(["--older-than", "1h"]) == 0)
                #expect(try memdir(["list", scratch.memDir.path, "--older-than", "soon"]).status == 2)
            }
        }

        @Test("--format folded: one line per stack, outermost frame first, bytes last")
        func folded() throws {
            let program = try E2E.example("seeds")
            try withScratch { scratch in
                _ = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                let resolved = try memdir(["resolve", scratch.memDir.path, "--format", "folded"])
                #expect(resolved.status == 0)
                let lines = resolved.stdoutText.split(separator: "\n")
                #expect(lines.count == 1, "\(resolved.stdoutText)")
                let line = try #require(lines.first)
                #expect(line.hasSuffix(" 30"))
                let frames = line.dropLast(3).split(separator: ";").map(String.init)
                #expect(frames.first?.hasPrefix("main") == true, "stacks stop at main: \(frames)")
                #expect(frame(frames.last ?? "", isAt: try location("seeds.c", "LEAK: p3")), "\(frames)")
                let listed = try memdir(["list", scratch.memDir.path, "--format", "folded"])
                let listedFrames = listed.stdoutText.dropLast(4).split(separator: ";")
                #expect(listed.stdoutText.hasSuffix(" 30\n") && listed.stdoutText.split(separator: "\n").count == 1)
                #expect(listedFrames.last?.hasPrefix("seeds+0x") == true, "\(listed.stdoutText)")
                #expect(try memdir(["list", scratch.memDir.path, "--format", "svg"]).status == 2)
            }
        }

        @Test("watch: JSON lines and text lines per interval, totals equal stats, groups on rescans; a PID finds its run directory")
        func watch() throws {
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 10 100") == "grew 10")
                let stats = try StatsView(scratch.memDir)

                let run = try memdir(["watch", scratch.memDir.path, "--count", "3", "--interval", "10ms", "--rescan", "2", "--json"])
                #expect(run.status == 0, "\(run.stderrText)")
                let lines = run.stdoutText.split(separator: "\n")
                #expect(lines.count == 3)
                let samples = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                for (i, s) in samples.enumerated() {
                    #expect(s["schema"] as? String == "memdir-watch/1")
                    #expect((s["pid"] as? NSNumber)?.int32Value == server.pid)
                    #expect((s["heap_current"] as? NSNumber)?.intValue == stats.heapCurrent)
                    #expect((s["live_blocks"] as? NSNumber)?.intValue == stats.liveBlocks)
                    #expect(s["state"] as? String == "running")
                    #expect((s["allocations_per_second"] is NSNull) == (i == 0), "rates need a previous sample")
                    let groups = s["groups"] as? [[String: Any]]
                    // The first sample always rescans; later ones every 2 samples, unless that would
                    // spend more than a tenth of the time rescanning (timing: not asserted).
                    #expect(i != 0 || groups != nil)
                    #expect(i != 1 || groups == nil)
                    if let groups {
                        let g = try #require(groups.first { frame($0["location"] as? String ?? "", isAt: grow) }, "\(groups)")
                        #expect((g["bytes"] as? NSNumber)?.intValue == 1000 && (g["blocks"] as? NSNumber)?.intValue == 10)
                        #expect((g["growth_since_start"] as? NSNumber)?.intValue == 0)
                    }
                }

                let byPid = try memdir(["watch", String(server.pid), "--count", "1"])
                #expect(byPid.status == 0, "\(byPid.stderrText)")
                let line = byPid.stdoutText
                #expect(line.split(separator: "\n").count == 1)
                #expect(line.contains(" pid \(server.pid) heap \(stats.heapCurrent) B in \(stats.liveBlocks) blocks, peak "), "\(line)")
                #expect(line.hasSuffix(" (running)\n"))

                let notTraced = try memdir(["watch", String(getpid()), "--count", "1"])
                #expect(notTraced.status == 13)
                #expect(notTraced.stderrText == "memdir: error: process \(getpid()) is not traced: libmemtrack.so is not in its LD_PRELOAD\n")
                #expect(try memdir(["watch", scratch.memDir.path, "--interval", "0"]).status == 2)

                #expect(try server.send("quit") == "bye")
                server.process.waitUntilExit()
                let ended = try memdir(["watch", scratch.memDir.path, "--interval", "10ms"])
                #expect(ended.status == 0 && ended.stdoutText.hasSuffix(" (exit)\n"), "watch ends by itself when the process has ended: \(ended.stdoutText)")
            }
        }

        /// Chromium from the distribution (`.ci/run` installs it); nil when it is not on PATH.
        static let chromium: String? = ["chromium", "chromium-browser", "google-chrome"]
            .compactMap { findExecutable($0)?.path }.first

        @Test("report --html in a real browser: the page renders, the script draws the icicle, the largest group is in it",
              .enabled(if: chromium != nil, "chromium is not installed (apt-get install chromium; .ci/run does)"))
        func htmlReport() throws {
            let browser = try #require(Self.chromium)
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 40 100") == "grew 40")
                let a = scratch.root.appendingPathComponent("a.json").path, b = scratch.root.appendingPathComponent("b.json").path
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", a]).status == 0)
                #expect(try server.send("wait 20") == "waited")
                #expect(try server.send("grow 60 100") == "grew 100")
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", b]).status == 0)
                let page = scratch.root.appendingPathComponent("report.html").path
                let made = try memdir(["report", scratch.memDir.path, "--html", page, "--snapshot", a, "--snapshot", b])
                #expect(made.status == 0, "\(made.stderrText)")
                let html = try String(contentsOfFile: page, encoding: .utf8)
                #expect(!html.contains("http://") && !html.contains("https://") && !html.contains(" src="), "self-contained")

                let profile = scratch.root.appendingPathComponent("chromium-profile").path
                let common = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--window-size=1200,900"]
                let dom = runPlain(browser, common + ["--dump-dom", "file://\(page)"], timeout: 120)
                #expect(dom.exitedNormally && dom.status == 0, "\(dom.statusDescription) \(dom.stderrText.suffix(500))")
                let text = dom.stdoutText
                // The icicle's frames exist only once the page's script has run.
                let frames = text.components(separatedBy: "class=\"frame").count - 1
                // Stacks stop at main (--show-below-main=no), so the icicle has no start-up frames.
                #expect(frames >= 5, "frames drawn by the script: \(frames)")
                let leaf = try #require(text.components(separatedBy: "class=\"frame").dropFirst().first { frame(String($0.split(separator: ">")[1].split(separator: "<")[0]), isAt: grow) },
                                        "no frame for the largest group in the DOM")
                #expect(leaf.contains("data-bytes=\"10000\""), "\(leaf.prefix(300))")
                #expect(leaf.contains("100 blocks, 10000 bytes"))
                let growLine = try sourceLine("server.c", "SERVER: grow")
                #expect(text.contains("id=\"largest\">grow ") && text.contains("server.c:\(growLine)</span>"))
                #expect(text.contains("<polyline"), "the chart from the two snapshots")

                let shot = scratch.root.appendingPathComponent("report.png").path
                let picture = runPlain(browser, common + ["--screenshot=\(shot)", "file://\(page)"], timeout: 120)
                #expect(picture.exitedNormally && picture.status == 0, "\(picture.statusDescription)")
                let png = try Data(contentsOf: URL(fileURLWithPath: shot))
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "a real picture: \(png.count) bytes")
            }
        }

        @Test("check on a live process: the writer thread classifies the live set at that moment, lost blocks by kind, and the process goes on")
        func check() throws {
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            let lose = try location("server.c", "SERVER: lose")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 10 100") == "grew 10")
                #expect(try server.send("lose 3 77") == "lost")
                func ask() throws -> (answer: [String: Any], groups: [ReportGroup], lost: [ReportGroup]) {
                    let json = try memdirJSON(["check", String(server.pid), "--json", "--show-leak-kinds", "all"])
                    #expect(json["schema"] as? String == "memdir-check/1")
                    let checks = try #require(json["checks"] as? [[String: Any]])
                    try #require(checks.count == 1)
                    let report = try reportView(try #require(json["report"] as? [String: Any]))
                    return (checks[0], report.leaks(at: grow), report.leaks(at: lose))
                }
                let first = try ask()
                #expect(first.answer["result"] as? String == "complete", "\(first.answer)")
                #expect(FileManager.default.fileExists(atPath: first.answer["answer"] as? String ?? "/"))
                #expect((first.answer["lost"] as? [String: Any])?["definitely"] as? Int == 3, "\(first.answer)")
                // The blocks were younger than the settle time: the request wrote them out first.
                // The kept ones are still reachable (a global points to the index); the dropped
                // ones are definitely lost.
                #expect(first.groups.map(\.blocks) == [10] && first.groups.map(\.bytes) == [1000], "\(first.groups)")
                #expect(first.groups.map(\.kind) == ["still_reachable"], "\(first.groups)")
                #expect(first.lost.map(\.kind) == ["definitely_lost"] && first.lost.map(\.blocks) == [3], "\(first.lost)")

                #expect(try server.send("grow 5 100") == "grew 15", "the process goes on")
                let second = try ask()
                #expect(second.answer["answer"] as? String != first.answer["answer"] as? String)
                #expect(((second.answer["seq"] as? NSNumber)?.intValue ?? 0) > ((first.answer["seq"] as? NSNumber)?.intValue ?? 0))
                #expect(second.groups.map(\.blocks) == [15])

                #expect(try server.send("quit") == "bye")
                server.process.waitUntilExit()
                let ended = try memdir(["check", scratch.memDir.path])
                #expect(ended.status == 14)
                #expect(ended.stderrText.hasSuffix("is not running (state exit)\n"), "\(ended.stderrText)")
            }
        }

        @Test("check: a process without a writer thread (MEM_SETTLE_MS=0) cannot answer: status 15 after --timeout, and the request is withdrawn")
        func checkTimesOut() throws {
            let program = try E2E.example("server")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                let run = try memdir(["check", String(server.pid), "--timeout", "200ms"])
                #expect(run.status == 15)
                #expect(run.stderrText.contains("no answer from the process of "), "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("check-request").path))
                #expect(try memdir(["check"]).status == 2)

                server.kill9()   // its status still says running; the kernel knows better
                let killed = try memdir(["check", dir.url.path])
                #expect(killed.status == 14)
                #expect(killed.stderrText.contains("is gone: killed by SIGKILL?"), "\(killed.stderrText)")
            }
        }

        @Test("stats: a forked child and an exec'd image count in counters files of their own, from zero")
        func statsAcrossFork() throws {
            let program = try E2E.example("forking")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                let dirs = try runDirectories(scratch.memDir)
                #expect(dirs.count == 5)
                for dir in dirs {
                    let stats = try StatsView(dir.url)
                    #expect(stats.calls["malloc"] != nil, "\(dir.name) has its own counters")
                }
                // The child that leaks 2222 bytes and calls _exit: one malloc, three frees of the
                // blocks it inherited (they leave its heap: it may go below zero), nothing of the parent's.
                let child = try #require(dirs.first { $0.blockSizes == [2222] })
                let c = try StatsView(child.url)
                #expect(c.calls["malloc"] == 1 && c.calls["free"] == 3 && c.bytesRequested == 2222)
                #expect(c.histogram == [2048: 1])
                #expect(c.liveBlocks == 1 - 3)
                // The child that execs: its record (state exec) saw only the three frees.
                let execing = try #require(dirs.first { $0.state == "exec" })
                let e = try StatsView(execing.url)
                #expect(e.calls["free"] == 3 && e.calls.filter { $0.key != "free" }.values.allSatisfy { $0 == 0 }, "\(e.calls)")
            }
        }
    }
}
