// FuzzTests.swift: the readers under RecordFuzzer. Seeds are real: run directories written by
// libmemtrack.so for Examples/ programs (seeds: blocks, stacks, bad free, leak-check, counters;
// annotated: sources; shm_anonymous and shm_posix: mapping and segment records), a snapshot and a
// watch history written by memdir. The smoke test runs 40 iterations per kind (600 in all);
// MEMDIR_FUZZ_ITERATIONS=10000 is the long run (the catalog's Development, "Fuzzing the readers").

import Foundation
import Testing
import MemdirKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Fuzzing the readers", .serialized, .sharesTheMachine)
struct FuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["MEMDIR_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 40
    }
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["MEMDIR_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261207
    }

    /// A run directory of `program` (one process), moved to `into/name`.
    static func seedRun(_ program: String, _ arguments: [String], into: URL, name: String) throws -> URL {
        let memDir = into.appendingPathComponent(name + "-mem")
        let run = try runTracked(try E2E.example(program), arguments, Tracking(memDir: memDir))
        guard run.exitedNormally else { throw HarnessError("\(program): \(run.statusDescription)\n\(run.stderrText)") }
        // The first process (a program may fork or exec: its run directory sorts first).
        guard let directory = try runDirectories(memDir).first?.url else { throw HarnessError("\(program) left no run directory") }
        let target = into.appendingPathComponent(name)
        try FileManager.default.moveItem(at: directory, to: target)
        return target
    }

    static func names(_ dir: URL, _ match: (String) -> Bool) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter(match).sorted()
    }

    /// Reads a whole directory the way list and its renderers do (no addr2line); `blocks` and
    /// `stacks` add the readers that look at those files alone.
    static func readReport(_ dir: URL, leakCheckName: String = "leak-check", blocks: Bool = false, stacks: Bool = false) {
        var options = ReportOptions(grouping: blocks ? .stack : .frame)
        options.leakCheckNames = [dir.lastPathComponent: leakCheckName]
        if blocks { options.leaks = LeakOptions(shownKinds: Set(LeakKind.classified)) }
        if let report = try? ReportBuilder.build(directory: dir.path, options: options) {
            _ = TableFormatter().format(report)
            _ = JSONFormatter().format(report)
            _ = FoldedFormatter().format(report)
            _ = report.isClean
        }
        if blocks { _ = try? BlockRecordV2.readAll(runDirectory: dir.path) }
        if stacks { _ = try? StackTable.read(runDirectory: dir.path) }
    }

    static func kinds(_ root: URL) throws -> [FuzzKind] {
        let seeds = try seedRun("seeds", [], into: root, name: "seeds")
        let annotated = try seedRun("annotated", ["located"], into: root, name: "annotated")
        let anonymous = try seedRun("shm_anonymous", [], into: root, name: "shm-anonymous")
        let segmentName = "/memdir-fuzz-\(getpid())"
        defer { _ = shm_unlink(segmentName) }
        let posix = try seedRun("shm_posix", ["leak", segmentName], into: root, name: "shm-posix")

        // Version 1 block files are read, no longer written: one made from a real record's fields.
        let v1 = root.appendingPathComponent("seeds-v1")
        try FileManager.default.copyItem(at: seeds, to: v1)
        let samples = try BlockRecordV2.readAll(runDirectory: v1.path)
        var v1Names: [String] = []
        for (name, s) in samples.sorted(by: { $0.key < $1.key }).prefix(3) {
            unlink(v1.appendingPathComponent(name).path)
            let line = "memtrack/1 block address=0x\(String(s.address, radix: 16)) size=\(s.size) seq=\(s.seq) thread=\(s.thread) "
                + "ms=\(s.ms) via=\(s.via) stack=\(s.stack.map { "0x" + String($0, radix: 16) }.joined(separator: ",")) family=new "
                + "src=annotated.c:12:located\n"
            RecordFuzzer.write(v1.appendingPathComponent(name), Array(line.utf8))
            v1Names.append(name)
        }

        // An on-demand check's answer is the leak-check format with `when request`.
        let leakCheck = try String(contentsOf: seeds.appendingPathComponent("leak-check"), encoding: .utf8)
        try leakCheck.replacingOccurrences(of: "when exit", with: "when request")
            .write(to: seeds.appendingPathComponent("leak-check-7"), atomically: false, encoding: .utf8)

        // A snapshot and a watch history, as memdir writes them.
        let files = root.appendingPathComponent("files")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        let snapshot = files.appendingPathComponent("snapshot.json")
        let snap = try memdir(["snapshot", seeds.path, "-o", snapshot.path])
        guard snap.status == 0 else { throw HarnessError("memdir snapshot: \(snap.stderrText)") }
        let watch = try memdir(["watch", seeds.path, "--json", "--count", "2", "--interval", "10ms"])
        guard watch.status == 0, !watch.stdout.isEmpty else { throw HarnessError("memdir watch: \(watch.stderrText)") }
        try (watch.stdoutText + watch.stdoutText).write(to: files.appendingPathComponent("history.jsonl"), atomically: false, encoding: .utf8)
        let seedSnapshot = try Snapshot.load(path: snapshot.path)

        let blocks = names(seeds) { $0.hasSuffix(".mem") }
        let badFrees = names(seeds) { $0.hasSuffix(".free") }
        let maps = names(anonymous) { $0.hasSuffix(".map") }
        let segments = names(posix) { $0.hasSuffix(".shm") }
        for (what, list) in [("block records", blocks), ("bad-free records", badFrees), ("mapping records", maps), ("segment records", segments)]
        where list.isEmpty {
            throw HarnessError("the seed runs wrote no \(what)")
        }
        guard fileExists(annotated.appendingPathComponent("sources")) else { throw HarnessError("annotated wrote no sources file") }

        let report: (URL) -> Void = { readReport($0) }
        func run(_ name: String, _ dir: URL, _ files: [String], binary: Bool = false, symlink: Bool = false,
                 _ read: @escaping (URL) -> Void = report) -> FuzzKind {
            FuzzKind(name: name, directory: dir, files: files, binary: binary, symlink: symlink, read: read)
        }
        return [
            run("block-v2", seeds, blocks, symlink: true) { readReport($0, blocks: true) },
            run("block-v1", v1, v1Names) { readReport($0, blocks: true) },
            run("stacks", seeds, ["stacks"]) { readReport($0, blocks: true, stacks: true) },
            run("sources", annotated, ["sources"]) { readReport($0, blocks: true, stacks: true) },
            run("bad-free", seeds, badFrees),
            run("shm-mapping", anonymous, maps),
            run("shm-segment", posix, segments),
            run("process", seeds, ["process"]),
            run("modules", seeds, ["modules"]),
            run("status", seeds, ["status"]),
            run("leak-check", seeds, ["leak-check"]) { dir in
                readReport(dir)
                _ = LeakCheckParser.read(dir.appendingPathComponent("leak-check").path)
            },
            run("leak-check-SEQ", seeds, ["leak-check-7"]) { dir in
                readReport(dir, leakCheckName: "leak-check-7")
                let path = dir.appendingPathComponent("leak-check-7").path
                if let text = regularFileText(path) { _ = try? CheckAnswer.parse(text, path: path) }
            },
            run("counters", seeds, ["counters"], binary: true) { dir in
                if let (stats, _) = try? ProcessStats.load(directory: dir.path) {
                    _ = StatsFormatter.text(stats)
                    _ = StatsFormatter.json(stats, directory: dir.path)
                }
                let watch = ProcessWatch(runDirectory: dir.path)
                let first = watch.sample(now: 1_000)
                let second = watch.sample(now: 1_001)
                for s in [first, second] { _ = WatchFormatter.line(s); _ = WatchFormatter.jsonLine(s) }
                _ = WatchFormatter.screen([first, second], groups: [:], interval: 1, width: 80)
                _ = try? Snapshot.take(directory: dir.path, grouping: .frame).json()
            },
            FuzzKind(name: "snapshot", directory: files, files: ["snapshot.json"]) { dir in
                guard let s = try? Snapshot.load(path: dir.appendingPathComponent("snapshot.json").path) else { return }
                for d in [SnapshotDiff.compare(seedSnapshot, s, addr2line: nil, rules: WrapperRules()),
                          SnapshotDiff.compare(s, seedSnapshot, addr2line: nil, rules: WrapperRules())] {
                    _ = DiffFormatter.text(d)
                    _ = DiffFormatter.json(d)
                }
                _ = s.json()
                _ = HTMLReport.series(snapshots: [seedSnapshot, s], history: [])
            },
            FuzzKind(name: "watch-history", directory: files, files: ["history.jsonl"]) { dir in
                guard let h = try? WatchHistory.load(path: dir.appendingPathComponent("history.jsonl").path) else { return }
                _ = HTMLReport.series(snapshots: [seedSnapshot], history: h)
                for s in h { _ = WatchFormatter.line(s); _ = WatchFormatter.jsonLine(s) }
            },
        ]
    }

    static func fileExists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    /// The text of a regular file (as memdir check reads its answer), without blocking.
    static func regularFileText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 64 << 20 else { return nil }
        return String(decoding: FileHandle(fileDescriptor: fd, closeOnDealloc: false).readDataToEndOfFile(), as: UTF8.self)
    }

    @Test("every file kind memdir reads, mutated: no crash, no hang, bounded memory (MEMDIR_FUZZ_ITERATIONS per kind)")
    func fuzzEveryKind() throws {
        try withScratch { scratch in
            let root = scratch.memDir.deletingLastPathComponent().appendingPathComponent("fuzz")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let all = try Self.kinds(root)
            // MEMDIR_FUZZ_KINDS=stacks,counters: only those (to resume a long run).
            let only = ProcessInfo.processInfo.environment["MEMDIR_FUZZ_KINDS"].map { Set($0.split(separator: ",").map(String.init)) }
            let kinds = only.map { o in all.filter { o.contains($0.name) } } ?? all
            let before = RecordFuzzer.maxRSSMiB()
            let figures = RecordFuzzer.run(kinds, iterations: Self.iterations, seed: Self.seed)
            var report = "memdir fuzz: seed \(Self.seed), \(Self.iterations) iterations per kind, peak RSS before \(Int(before)) MiB\n"
            for f in figures {
                report += "  \(f.kind.padding(toLength: 15, withPad: " ", startingAt: 0)) \(f.iterations) in "
                    + String(format: "%.1f s (slowest %.3f s), peak RSS %.0f MiB\n", f.seconds, f.slowestSeconds, f.maxRSSMiB)
            }
            FileHandle.standardError.write(Data(report.utf8))
            #expect(figures.count == (only == nil ? 15 : kinds.count))
            // A sparse 8 GiB file read whole, or one line parsed into gigabytes, would show here.
            let peak = figures.map(\.maxRSSMiB).max() ?? 0
            #expect(peak - before < 512, "\(report)")
            #expect(figures.allSatisfy { $0.slowestSeconds < 10 }, "\(report)")
        }
    }
}
