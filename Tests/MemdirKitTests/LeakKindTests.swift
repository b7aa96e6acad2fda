// LeakKindTests.swift: the leak-check parser, the classification of blocks, kind totals,
// --show-leak-kinds, the text and JSON renderings of kinds, and the gate of `memdir run`,
// on run directories written by hand in the tracker's formats.

import Testing
@testable import MemdirKit

@Suite struct LeakCheckParserTests {
    func parse(_ text: String) throws(MemdirError) -> LeakCheckRecord {
        try LeakCheckParser.parse(Array(text.utf8), path: "/r/leak-check")
    }

    @Test func completeRecord() throws {
        let r = try parse("""
            memtrack/1 leak-check
            result complete
            when exit
            seq 48213
            ms 1234
            duration-us 5321
            threads 4
            threads-scanned 3
            blocks 1200
            future-key whatever it says
            note thread 4243 did not stop within 100 ms; its stack was not scanned
            lost 0x55d0c0a2b2a0 definitely
            lost 0x55d0c0a2b2e0 indirectly
            lost 0x55d0c0a2b400 possibly
            end

            """)
        #expect(r.result == .complete && r.ended && r.when == "exit")
        #expect(r.seq == 48213 && r.ms == 1234 && r.durationUs == 5321)
        #expect(r.threads == 4 && r.threadsScanned == 3 && r.blocks == 1200)
        #expect(r.notes == ["thread 4243 did not stop within 100 ms; its stack was not scanned"])
        #expect(r.lost == [0x55d0c0a2b2a0: .definitelyLost, 0x55d0c0a2b2e0: .indirectlyLost, 0x55d0c0a2b400: .possiblyLost])
    }

    @Test func lostLinesInAnyOrder() throws {
        let r = try parse("memtrack/1 leak-check\nseq 9\nlost 0x30 possibly\nlost 0x10 definitely\nlost 0x20 indirectly\nend\n")
        #expect(r.lost.count == 3)
        #expect(r.lost[0x10] == .definitelyLost && r.lost[0x20] == .indirectlyLost && r.lost[0x30] == .possiblyLost)
        #expect(r.lost[0x0] == nil && r.lost[0x15] == nil && r.lost[0x40] == nil)
    }

    @Test func skippedFailedAndCutShort() throws {
        #expect(try parse("memtrack/1 leak-check\nresult skipped MEM_LEAK_CHECK=0\nend\n").result == .skipped("MEM_LEAK_CHECK=0"))
        #expect(try parse("memtrack/1 leak-check\nresult failed out of memory for the mark stack\nend\n").result
                == .failed("out of memory for the mark stack"))
        // No `end`: not usable, but not an error either (the contract's "incomplete").
        let cut = try parse("memtrack/1 leak-check\nresult complete\nseq 9\nlost 0x10 definitely\nen")
        #expect(!cut.ended && cut.lost == [0x10: .definitelyLost])
        #expect(Classification.make(record: cut, status: nil).reason == "leak-check record incomplete (no end line)")
    }

    @Test func badRecords() {
        #expect(throws: MemdirError.unsupportedVersion(path: "/r/leak-check", version: "2")) {
            try parse("memtrack/2 leak-check\nresult complete\nseq 1\nend\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/r/leak-check", reason: "expected a leak-check record, found 'status'")) {
            try parse("memtrack/1 status\nstate exit\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/r/leak-check", reason: "line 3: unknown leak kind 'lost'")) {
            try parse("memtrack/1 leak-check\nseq 1\nlost 0x10 lost\nend\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/r/leak-check", reason: "line 2: bad number for 'seq'")) {
            try parse("memtrack/1 leak-check\nseq x\nend\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/r/leak-check", reason: "missing field 'seq'")) {
            try parse("memtrack/1 leak-check\nresult complete\nend\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "/r/leak-check", reason: "empty file")) { try parse("") }
    }

    @Test func reasonsWithoutARecord() {
        func status(_ text: String) -> StatusRecord { try! RecordParser.parseStatus("memtrack/1 status\n" + text, path: "s") }
        #expect(Classification.missingReason(status("state signal\nsignal 11\nsignal-name SIGSEGV\n")) == "killed by SIGSEGV")
        #expect(Classification.missingReason(status("state exec\nexec-path /bin/ls\n")) == "replaced by exec of /bin/ls")
        #expect(Classification.missingReason(status("state running\n")) == "still running or killed (e.g. SIGKILL)")
        #expect(Classification.missingReason(status("state exit\ncode 0\n")) == "no leak-check record (it could not be written)")
        #expect(Classification.missingReason(nil) == "no leak-check record and no status record")
        let c = Classification.make(record: nil, status: status("state signal\nsignal 9\n"))
        #expect(c.reason == "killed by signal 9" && c.kind(address: 1, seq: 1) == .notClassified)
    }

    @Test func kindLists() {
        #expect(LeakKind.parseSet("definite,indirect") == [.definitelyLost, .indirectlyLost])
        #expect(LeakKind.parseSet("all") == [.definitelyLost, .indirectlyLost, .possiblyLost, .stillReachable])
        #expect(LeakKind.parseSet("none") == [])
        #expect(LeakKind.parseSet("reachable,possible") == [.stillReachable, .possiblyLost])
        #expect(LeakKind.parseSet("definite,") == nil)
        #expect(LeakKind.parseSet("lost") == nil)
    }
}

@Suite struct ClassificationTests {
    let libc: UInt64 = 0x7f0000002000

    /// One process: blocks of every kind, two of them at the same place with different kinds,
    /// one allocated after the check, and a `lost` line for an address with no block.
    func fixture(_ t: TempDir) {
        t.run("4242")
        t.block("4242", address: 0x10, size: 1000, seq: 1, stack: [0x401100, 0x401500])  // definitely
        t.block("4242", address: 0x20, size: 200, seq: 2, stack: [0x401100, 0x401500])   // still reachable, same place
        t.block("4242", address: 0x30, size: 30, seq: 3, stack: [0x401200, 0x401500])    // indirectly
        t.block("4242", address: 0x40, size: 4, seq: 4, stack: [libc + 0x10, 0x401300])  // possibly, via strdup
        t.block("4242", address: 0x50, size: 5, seq: 5, stack: [0x401400])              // definitely
        t.block("4242", address: 0x60, size: 2_000_000, seq: 9, stack: [0x401400])      // after the check
        t.leakCheck("4242", seq: 8, lost: [(0x10, "definitely"), (0x30, "indirectly"), (0x40, "possibly"),
                                           (0x50, "definitely"), (0x999, "definitely")],
                    notes: ["thread 4243 did not stop within 100 ms; its stack was not scanned"])
    }

    func report(_ dir: String, shown: Set<LeakKind> = LeakOptions.defaultShown, by mode: GroupingMode = .frame) throws -> Report {
        try ReportBuilder.build(directory: dir, options: ReportOptions(grouping: mode, leaks: LeakOptions(shownKinds: shown)))
    }

    @Test func everyBlockGetsItsKind() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        let p = try report(t.path, shown: LeakKind.parseSet("all")!).processes[0]
        #expect(p.leaks.map { "\($0.kind.jsonName) \($0.blocks) \($0.bytes) \($0.location)" } == [
            "definitely_lost 1 1000 prog+0x1100",
            "definitely_lost 1 5 prog+0x1400",
            "indirectly_lost 1 30 prog+0x1200",
            "possibly_lost 1 4 prog+0x1300",
            "still_reachable 1 200 prog+0x1100",
            "not_classified 1 2000000 prog+0x1400",
        ])
        #expect(p.totals[.definitelyLost] == Tally(blocks: 2, bytes: 1005))
        #expect(p.totals[.indirectlyLost] == Tally(blocks: 1, bytes: 30))
        #expect(p.totals[.possiblyLost] == Tally(blocks: 1, bytes: 4))
        #expect(p.totals[.stillReachable] == Tally(blocks: 1, bytes: 200))
        #expect(p.totals[.notClassified] == Tally(blocks: 1, bytes: 2_000_000))
        #expect(p.leakedBlocks == 4 && p.leakedBytes == 1039)
        #expect(p.unclassifiedReason == "allocated after the leak check")
    }

    @Test func groupingModesKeepKindsApart() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        for mode in GroupingMode.allCases {
            let leaks = try report(t.path, shown: LeakKind.parseSet("all")!, by: mode).processes[0].leaks
            #expect(leaks.filter { $0.kind == .definitelyLost }.map(\.bytes).reduce(0, +) == 1005, "\(mode)")
            #expect(leaks.filter { $0.kind == .stillReachable }.map(\.bytes) == [200], "\(mode)")
        }
    }

    @Test func showLeakKinds() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        // Default: the lost kinds, and the not classified block (nothing else can be said of it).
        #expect(try report(t.path).processes[0].leaks.map(\.kind)
                == [.definitelyLost, .definitelyLost, .indirectlyLost, .possiblyLost, .notClassified])
        #expect(try report(t.path, shown: [.stillReachable]).processes[0].leaks.map(\.kind) == [.stillReachable, .notClassified])
        let none = try report(t.path, shown: [])
        #expect(none.processes[0].leaks.isEmpty)
        #expect(none.processes[0].totals[.definitelyLost].blocks == 2, "totals do not depend on what is shown")
    }

    @Test func textReportInValgrindsWords() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        let text = TableFormatter().format(try report(t.path))
        #expect(text.contains("""
            process 4242 /home/me/prog (exit 0)
              loss records: 5
                blocks      bytes  kind             location
                     1      1,000  definitely lost  prog+0x1100
                     1          5  definitely lost  prog+0x1400
                     1         30  indirectly lost  prog+0x1200
                     1          4  possibly lost    prog+0x1300
                     1  2,000,000  not classified   prog+0x1400
              note: leak check: thread 4243 did not stop within 100 ms; its stack was not scanned
              leak summary:
                 definitely lost: 1,005 bytes in 2 blocks
                 indirectly lost: 30 bytes in 1 blocks
                   possibly lost: 4 bytes in 1 blocks
                 still reachable: 200 bytes in 1 blocks
                      suppressed: 0 bytes in 0 blocks
                  not classified: 2,000,000 bytes in 1 blocks (allocated after the leak check)

            """), "\(text)")
        #expect(text.hasSuffix("""
            LEAK SUMMARY (1 process):
               definitely lost: 1,005 bytes in 2 blocks
               indirectly lost: 30 bytes in 1 blocks
                 possibly lost: 4 bytes in 1 blocks
               still reachable: 200 bytes in 1 blocks
                    suppressed: 0 bytes in 0 blocks
                not classified: 2,000,000 bytes in 1 blocks
                     bad frees: 0
            total: 4 lost blocks, 1,039 bytes; 0 bad frees in 1 process

            """), "\(text)")
    }

    @Test func jsonCarriesKinds() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        let json = JSONFormatter().value(try report(t.path)).render()
        #expect(json.hasPrefix("{\n  \"schema\": \"memdir-report/2\",\n"))
        #expect(json.contains("\"shown_kinds\": [\n    \"definitely_lost\",\n    \"indirectly_lost\",\n    \"possibly_lost\"\n  ],"))
        #expect(json.contains("""
                  "leak_check": {
                    "classified": true,
                    "unclassified_reason": "allocated after the leak check",
                    "notes": [
                      "thread 4243 did not stop within 100 ms; its stack was not scanned"
                    ]
                  },
                  "leak_kinds": {
                    "definitely_lost": {
                      "blocks": 2,
                      "bytes": 1005
                    },
                    "indirectly_lost": {
                      "blocks": 1,
                      "bytes": 30
                    },
                    "possibly_lost": {
                      "blocks": 1,
                      "bytes": 4
                    },
                    "still_reachable": {
                      "blocks": 1,
                      "bytes": 200
                    },
                    "suppressed": {
                      "blocks": 0,
                      "bytes": 0
                    },
                    "not_classified": {
                      "blocks": 1,
                      "bytes": 2000000
                    }
                  },
                  "leaked_blocks": 4,
                  "leaked_bytes": 1039,
                  "leaks": [
                    {
                      "kind": "definitely_lost",
                      "blocks": 1,
                      "bytes": 1000,
            """), "\(json)")
    }

    @Test func processesWithoutAClassification() throws {
        let t = TempDir(); defer { t.remove() }
        t.run("1", status: "state signal\nsignal 11\nsignal-name SIGSEGV\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n")
        t.block("1", address: 0x10, size: 1234, seq: 1, stack: [0x401100])
        t.run("2")
        t.block("2", address: 0x10, size: 7, seq: 1, stack: [0x401100])
        t.leakCheck("2", seq: 5, lost: [], result: "skipped the program is multi-threaded and MEM_LEAK_CHECK=0")
        t.run("3")
        t.block("3", address: 0x10, size: 8, seq: 1, stack: [0x401100])
        t.write("3/leak-check", "memtrack/3 leak-check\nresult complete\nseq 5\nend\n")
        let r = try report(t.path)
        #expect(r.processes.map(\.unclassifiedReason) == [
            "killed by SIGSEGV", "leak check skipped: the program is multi-threaded and MEM_LEAK_CHECK=0",
            "leak-check format version 3 not supported",
        ])
        #expect(r.processes.map { $0.totals[.notClassified].blocks } == [1, 1, 1])
        #expect(r.firstProblem == .unsupportedVersion(path: t.path + "/3/leak-check", version: "3"))
        #expect(TableFormatter().format(r).contains("\n  leak summary:\n"))
        #expect(TableFormatter().format(r).contains("\n      not classified: 1,234 bytes in 1 blocks (killed by SIGSEGV)\n"))
        // Not-classified blocks count as in use; a leak-check of another version cannot be read,
        // so that process's record is incomplete (and only that one).
        #expect(r.processes.map(\.recordIncomplete) == [false, false, true])
        #expect(!r.isClean)
    }
}

@Suite struct GateTests {
    func runCommand(_ args: [String]) throws -> RunCommand {
        try RunCommand(try ArgumentParser.parse(args + ["prog"], options: RunCommand.options, stopAtFirstPositional: true))
    }

    func gate(_ dir: String, _ args: [String], programStatus: Int32 = 4) throws -> (Int32, String) {
        let command = try runCommand(args)
        let leaks = try command.leakFlags.leakOptions()
        let report = try ReportBuilder.build(directory: dir, options: ReportOptions(leaks: leaks))
        let c = Captured()
        return (command.gate(report, programStatus: programStatus, console: c.console), c.err)
    }

    @Test func defaultsAndOptions() throws {
        let defaults = try runCommand([])
        #expect(defaults.errorExitCode == 23 && defaults.errorKinds == [.definitelyLost, .indirectlyLost])
        let set = try runCommand(["--error-exitcode=0", "--errors-for-leak-kinds", "possible,reachable"])
        #expect(set.errorExitCode == 0 && set.errorKinds == [.possiblyLost, .stillReachable])
        #expect(throws: MemdirError.usage("invalid value 'some' for '--errors-for-leak-kinds' (expected definite, indirect, possible, reachable, all or none, comma-separated)")) {
            try runCommand(["--errors-for-leak-kinds", "some"])
        }
        #expect(throws: MemdirError.self) { try runCommand(["--show-leak-kinds", "definite,everything"]) }
    }

    @Test func helpNamesTheNewOptions() {
        let c = Captured()
        #expect(MemdirCLI.main(["run", "--help"], console: c.console) == 0)
        for option in ["--errors-for-leak-kinds <KINDS>", "--show-leak-kinds <KINDS>", "--suppressions <FILE>", "--gen-suppressions",
                       "--json-file <FILE>", "(default 23; 0: off)"] {
            #expect(c.out.contains(option), "\(option)")
        }
        let list = Captured()
        #expect(MemdirCLI.main(["list", "--help"], console: list.console) == 0)
        #expect(list.out.contains("  --suppressions <FILE>") && list.out.contains("only the obj: (module) parts of suppressions can match"))
        #expect(!list.out.contains("--errors-for-leak-kinds"), "the gate is run's")
    }

    @Test func lostKindsBadFreesAndIncompleteRecords() throws {
        let t = TempDir(); defer { t.remove() }
        let run = t.run("1")
        t.block("1", address: 0x10, size: 10, seq: 1, stack: [0x401100])
        t.block("1", address: 0x20, size: 20, seq: 2, stack: [0x401200])
        t.leakCheck("1", seq: 2, lost: [(0x10, "possibly")])
        // possibly lost and still reachable: the default gate passes.
        #expect(try gate(run, []) == (4, ""))
        #expect(try gate(run, ["--errors-for-leak-kinds=possible"]) == (23, "memdir: exit status 23: 1 possibly lost\n"))
        #expect(try gate(run, ["--errors-for-leak-kinds=all", "--error-exitcode=7"]).0 == 7)
        #expect(try gate(run, ["--errors-for-leak-kinds=all", "--error-exitcode=0"]) == (4, ""))
        t.leakCheck("1", seq: 2, lost: [(0x10, "indirectly")])
        #expect(try gate(run, []) == (23, "memdir: exit status 23: 1 indirectly lost\n"))
        #expect(try gate(run, ["--errors-for-leak-kinds", "definite"]) == (4, ""))
        t.write("1/bad-3.free", "memtrack/1 invalid-free address=0x30 seq=3 thread=1 ms=1 via=free stack=0x401410\n")
        #expect(try gate(run, ["--errors-for-leak-kinds", "none"]) == (23, "memdir: exit status 23: 1 bad free\n"))
    }

    @Test func suppressedBlocksDoNotCount() throws {
        let t = TempDir(); defer { t.remove() }
        let run = t.run("1")
        t.block("1", address: 0x10, size: 10, seq: 1, stack: [0x401100])
        t.leakCheck("1", seq: 1, lost: [(0x10, "definitely")])
        let supp = t.write("lsan.supp", "leak:^prog$\n")
        #expect(try gate(run, []).0 == 23)
        #expect(try gate(run, ["--suppressions", supp]) == (4, ""))
    }

    @Test func incompleteRecordAndUnclassifiedBlocks() throws {
        let t = TempDir(); defer { t.remove() }
        let run = t.run("1", status: "state exit\ncode 0\nunrecorded-blocks 2\nunremoved-records 0\nunrecorded-events 0\n")
        t.block("1", address: 0x10, size: 10, seq: 1, stack: [0x401100])
        #expect(try gate(run, []) == (23, """
            memdir: note: 1 block not classified (no leak-check record (it could not be written)): not counted as lost
            memdir: exit status 23: record incomplete

            """))
        let complete = t.run("2", status: "state signal\nsignal 6\nsignal-name SIGABRT\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n")
        t.block("2", address: 0x10, size: 10, seq: 1, stack: [0x401100])
        #expect(try gate(complete, [], programStatus: 134) == (134, """
            memdir: note: 1 block not classified (killed by SIGABRT): not counted as lost

            """))
    }
}

/// `leader ADDRESS LEADER`: the clique leader of an indirectly lost block.
@Suite struct LeakCheckLeaderLines {
    static func parse(_ text: String) throws(MemdirError) -> LeakCheckRecord {
        try LeakCheckParser.parse(Array(text.utf8), path: "leak-check")
    }

    @Test("leaders are read, in any order of lines; records without them still parse")
    func leadersRead() throws {
        let record = try Self.parse("""
            memtrack/1 leak-check
            result complete
            seq 9
            lost 0x30 indirectly
            leader 0x30 0x20
            lost 0x10 definitely
            lost 0x20 indirectly
            leader 0x20 0x10
            lost 0x40 possibly
            end

            """)
        #expect(record.lost.hasLeaders)
        #expect(record.lost.leader(of: 0x30) == 0x20 && record.lost.leader(of: 0x20) == 0x10)
        #expect(record.lost.leader(of: 0x10) == nil && record.lost.leader(of: 0x40) == nil)
        #expect(record.lost.leads(0x10) && record.lost.leads(0x20) && !record.lost.leads(0x30) && !record.lost.leads(0x40))
        #expect(record.lost[0x30] == .indirectlyLost && record.lost[0x10] == .definitelyLost)
        let old = try Self.parse("memtrack/1 leak-check\nresult complete\nseq 1\nlost 0x20 indirectly\nend\n")
        #expect(!old.lost.hasLeaders && old.lost.leader(of: 0x20) == nil && old.lost[0x20] == .indirectlyLost)
    }

    @Test("a bad leader line, or a leader for a block not indirectly lost, is a malformed record")
    func badLeaders() {
        #expect(throws: MemdirError.malformedRecord(path: "leak-check", reason: "line 5: bad leader line")) {
            try Self.parse("memtrack/1 leak-check\nresult complete\nseq 1\nlost 0x20 indirectly\nleader 0x20 0xZZ\nend\n")
        }
        #expect(throws: MemdirError.malformedRecord(path: "leak-check", reason: "a leader line names 0x20, which is not indirectly lost")) {
            try Self.parse("memtrack/1 leak-check\nresult complete\nseq 1\nlost 0x20 definitely\nleader 0x20 0x10\nend\n")
        }
    }
}
