// LongRunningUnitTests.swift: the pieces of issue 9 that need no running program: the counters
// layout, durations and block ages, the snapshot JSON round trip, folded stacks, the check
// answer, and the new commands' usage errors.

import Testing
@testable import MemdirKit

@Suite struct LongRunningUnitTests {
    /// A counters file as the tracker lays it out (the catalog's Record format, "counters").
    func countersFile(version: String = "1", slots: [(slot: Int, word: Int, value: Int64)], published: Int64 = 0, peak: Int64 = 0) -> [UInt8] {
        let slotCount = 129, slotWords = 128
        var words = [UInt64](repeating: 0, count: 4096 / 8 + slotCount * slotWords)
        words[4] = UInt64(slotCount); words[5] = UInt64(slotWords); words[6] = 4096; words[7] = 65; words[8] = 65536
        words[9] = UInt64(bitPattern: published); words[10] = UInt64(bitPattern: peak)
        for s in slots { words[512 + s.slot * slotWords + s.word] = UInt64(bitPattern: s.value) }
        var bytes = words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
        let magic = Array("memtrack/\(version) counters\n".utf8)
        bytes.replaceSubrange(0..<magic.count, with: magic)
        return bytes
    }

    @Test func countersSumTheSlots() throws {
        let c = try CountersReader.parse(countersFile(slots: [
            (0, 0, 5), (1, 0, 2), (128, 0, 1),          // malloc: two threads and the shared slot
            (0, 9, 4),                                   // free
            (0, 16, 300), (1, 16, 50),                   // bytes requested
            (0, 17, 1000), (1, 17, -200),                // unpublished heap changes
            (0, 18, 3), (1, 18, 1),                      // live blocks
            (0, 19, 1500), (1, 19, 0),                   // high marks since the last publish
            (0, 32 + 5, 2), (1, 32 + 5, 1), (0, 32 + 0, 1),
        ], published: 70000, peak: 70500), path: "counters")
        #expect(c.calls[0] == 8 && c.calls[9] == 4 && c.allocations == 8)
        #expect(c.bytesRequested == 350)
        #expect(c.heapCurrent == 70000 + 1000 - 200)
        #expect(c.heapPeak == 70000 + 1500, "published heap plus the high marks beats the stored peak")
        #expect(c.liveBlocks == 4)
        #expect(c.histogram[5] == 3 && c.histogram[0] == 1)
        #expect(c.threads == 2, "the shared slot is not a thread of its own")
        #expect(Counters.bucketRange(5) == 16...31 && Counters.bucketRange(0) == 0...0 && Counters.bucketRange(1) == 1...1)
    }

    @Test func countersRefuseOtherVersionsAndShortFiles() {
        #expect(throws: MemdirError.unsupportedVersion(path: "c", version: "2")) {
            try CountersReader.parse(countersFile(version: "2", slots: []), path: "c")
        }
        #expect(throws: MemdirError.malformedRecord(path: "c", reason: "truncated counters file")) {
            try CountersReader.parse(Array(countersFile(slots: []).prefix(100)), path: "c")
        }
        var foreign = countersFile(slots: [])
        foreign[0] = UInt8(ascii: "X")
        #expect(throws: MemdirError.malformedRecord(path: "c", reason: "not a counters file")) { try CountersReader.parse(foreign, path: "c") }
    }

    @Test func durationsAndAges() {
        #expect(BlockAge.parseDuration("30s") == 30_000)
        #expect(BlockAge.parseDuration("250ms") == 250)
        #expect(BlockAge.parseDuration("2m") == 120_000)
        #expect(BlockAge.parseDuration("1h") == 3_600_000)
        #expect(BlockAge.parseDuration("1.5s") == 1500)
        #expect(BlockAge.parseDuration("7") == 7000)
        #expect(BlockAge.parseDuration("soon") == nil && BlockAge.parseDuration("-1s") == nil && BlockAge.parseDuration("") == nil)
        // Started at 1000, now 11000: a block must have ms <= 10000 - age.
        #expect(BlockAge.cutoff(olderThanMs: 4000, startUnixMs: 1000, now: 11000) == 6000)
        #expect(BlockAge.cutoff(olderThanMs: 20000, startUnixMs: 1000, now: 11000) == -10000)
        #expect(BlockAge.cutoff(olderThanMs: 1, startUnixMs: nil, now: 11000) == nil)
    }

    @Test func snapshotRoundTrip() throws {
        let group = SnapshotGroup(key: "prog+0x1187", blocks: 3, bytes: 90, oldestMs: 12, oldestSeq: 4,
                                  stack: [SnapshotFrame(address: 0x55d0c0a01187, module: "/tmp/prog \"x\"", offset: 0x1187),
                                          SnapshotFrame(address: 0x7f00, module: nil, offset: nil)], attributedFrame: 0)
        let process = SnapshotProcess(runDirectory: "/m/42", name: "42", pid: 42, exe: "/tmp/prog", startUnixMs: 1000,
                                      state: "running", counters: nil, groups: [group])
        let snapshot = Snapshot(directory: "/m", takenUnixMs: 5000, grouping: .stack, processes: [process])
        let t = TempDir()
        defer { t.remove() }
        let path = t.write("s.json", snapshot.json())
        let back = try Snapshot.load(path: path)
        #expect(back.takenUnixMs == 5000 && back.grouping == .stack && back.directory == "/m")
        let p = try #require(back.processes.first)
        #expect(p.pid == 42 && p.startUnixMs == 1000 && p.state == "running" && p.counters == nil)
        let g = try #require(p.groups.first)
        #expect(g.key == "prog+0x1187" && g.blocks == 3 && g.bytes == 90 && g.oldestMs == 12 && g.oldestSeq == 4)
        #expect(g.stack == group.stack)

        let other = t.write("o.json", "{\"schema\": \"memdir-snapshot/2\"}")
        #expect(throws: MemdirError.unsupportedVersion(path: other, version: "memdir-snapshot/2")) { try Snapshot.load(path: other) }
    }

    @Test func diffSortsByGrowth() {
        func snap(_ taken: Int, _ groups: [(String, Int, UInt64)]) -> Snapshot {
            Snapshot(directory: "d", takenUnixMs: taken, grouping: .frame, processes: [
                SnapshotProcess(runDirectory: "d/1", name: "1", pid: 1, exe: "p", startUnixMs: 0, state: "running", counters: nil,
                                groups: groups.map { SnapshotGroup(key: $0.0, blocks: $0.1, bytes: $0.2, oldestMs: 0, oldestSeq: 0, stack: [], attributedFrame: 0) }),
            ])
        }
        let d = SnapshotDiff.compare(snap(0, [("a", 1, 100), ("b", 2, 200), ("same", 1, 5)]),
                                     snap(2000, [("a", 3, 300), ("b", 1, 50), ("c", 1, 1000), ("same", 1, 5)]), addr2line: nil, rules: WrapperRules())
        #expect(d.seconds == 2)
        let p = d.processes[0]
        #expect(p.groups.map(\.key) == ["c", "a", "b"], "unchanged groups are left out")
        #expect(p.groups.map(\.bytesGrowth) == [1000, 200, -150])
        #expect(p.bytesGrowth == 1355 - 305)
        #expect(DiffFormatter.text(d).contains("\n      +1,000       +1  0 -> 1,000              c\n        +200       +2  100 -> 300              a\n"))
    }

    @Test func foldedFramesOutermostFirst() {
        var inner = Frame(address: 0x1000, module: "/bin/prog", offset: 0x1000)
        inner.symbols = [Symbol(function: "inlined;helper", file: "a.c", line: 3), Symbol(function: "main", file: "a.c", line: 9)]
        let outer = Frame(address: 0x2000, module: "/lib/libc.so.6", offset: 0x2000)
        #expect(FoldedFormatter.frameNames([inner, outer]) == ["libc.so.6+0x2000", "main a.c:9", "inlined:helper a.c:3"])
    }

    @Test func checkAnswer() throws {
        let a = try CheckAnswer.parse("""
            memtrack/1 leak-check
            result complete
            when request
            seq 48
            ms 12
            future-key whatever
            note thread 7 did not stop
            lost 0x10 definitely
            lost 0x20 indirectly
            lost 0x30 definitely
            end

            """, path: "leak-check-48")
        #expect(a.result == "complete" && a.reason == nil && a.seq == 48 && a.ms == 12)
        #expect(a.lost == ["definitely": 2, "indirectly": 1] && a.lostAddresses == [0x10, 0x20, 0x30])
        #expect(a.notes == ["thread 7 did not stop"])
        let skipped = try CheckAnswer.parse("memtrack/1 leak-check\nresult skipped classification not available\nend\n", path: "x")
        #expect(skipped.result == "skipped" && skipped.reason == "classification not available")
        #expect(throws: MemdirError.malformedRecord(path: "x", reason: "no end line (cut short)")) {
            try CheckAnswer.parse("memtrack/1 leak-check\nresult complete\n", path: "x")
        }
    }

    @Test func newCommandsUsage() {
        func run(_ args: [String]) -> (Int32, String) {
            let c = Captured()
            let status = MemdirCLI.main(args, console: c.console)
            return (status, c.err)
        }
        #expect(run(["diff", "a"]) == (2, "memdir: error: diff needs two snapshots (or a snapshot and a directory) (see memdir diff --help)\n"))
        #expect(run(["watch", "--interval", "fast"]).0 == 2)
        #expect(run(["watch", "--count", "0"]).0 == 2)
        #expect(run(["check"]) == (2, "memdir: error: missing PID or DIR (see memdir check --help)\n"))
        #expect(run(["report", "d"]) == (2, "memdir: error: missing '--html FILE' (see memdir report --help)\n"))
        #expect(run(["list", "--format", "folded", "--json"]).0 == 2)
        #expect(run(["stats", "/nonexistent-memdir"]).0 == 3)
    }
}
