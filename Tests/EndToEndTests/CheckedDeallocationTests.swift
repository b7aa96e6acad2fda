// CheckedDeallocationTests.swift: every deallocation checked against the family that allocated
// the block (Examples/mismatch.cpp marks each line: MATCHED, MISMATCH, ALLOC).

import Foundation
import Testing

/// An example run under the tracker, which must exit 0 with no leaks: its bad frees, in order,
/// each of them required to be a double free.
func doubleFrees(of example: String, settleMs: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> [ReportGroup] {
    let program = try E2E.example(example)
    return try withScratch { scratch in
        let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
        #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)", sourceLocation: sourceLocation)
        let report = try resolveReport(scratch.memDir)
        #expect(report.leaks.isEmpty, sourceLocation: sourceLocation)
        let bad = report.badFrees.sorted { ($0.raw["seq"] as? NSNumber)?.intValue ?? 0 < ($1.raw["seq"] as? NSNumber)?.intValue ?? 0 }
        #expect(bad.allSatisfy { $0.kind == "double-free" }, "\(bad.map(\.raw))", sourceLocation: sourceLocation)
        return bad
    }
}

/// A double free reported at `second` with the block's size, its allocation and its first free.
func expectDoubleFree(_ event: ReportGroup, size: Int, at second: String, allocatedAt malloc: String, firstFreedAt first: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(frame(event.attributed ?? "", isAt: second), "\(event.attributed ?? "nil")", sourceLocation: sourceLocation)
    #expect((event.raw["size"] as? NSNumber)?.intValue == size, "\(event.raw)", sourceLocation: sourceLocation)
    #expect(frame((event.raw["alloc_location"] as? String) ?? "", isAt: malloc), "\(event.raw)", sourceLocation: sourceLocation)
    #expect(frame((event.raw["free_location"] as? String) ?? "", isAt: first), "\(event.raw)", sourceLocation: sourceLocation)
}

extension EndToEnd {
    @Suite struct CheckedDeallocation {
        struct Expected: Hashable {
            var kind: String, via: String, family: String, line: String, allocLine: String
        }

        @Test("mismatch.cpp: the 6 mismatched pairs reported at their lines with the allocation's line; the 3 matched pairs not",
              arguments: bothModes)
        func mismatchedPairs(settleMs: Int?) throws {
            let program = try E2E.example("mismatch")
            let f = "mismatch.cpp"
            func pair(_ via: String, _ family: String, _ marker: String) throws -> Expected {
                let loc = try location(f, marker)
                return Expected(kind: "mismatched-free", via: via, family: family, line: loc, allocLine: loc)
            }
            var expected: Set<Expected> = [
                try pair("delete", "malloc", "MISMATCH: malloc then delete,"),
                try pair("delete[]", "malloc", "MISMATCH: malloc then delete[]"),
                try pair("delete", "new[]", "MISMATCH: new[] then delete,"),
                try pair("free", "new[]", "MISMATCH: new[] then free"),
                try pair("delete[]", "new", "MISMATCH: new then delete[]"),
                try pair("free", "new", "MISMATCH: new then free"),
            ]
            // A sized delete's size is checked exactly while the block is young (in memory); a
            // settled block's size is on disk only, and just a size beyond it would be caught.
            if settleMs != 0 {
                expected.insert(Expected(kind: "mismatched-size", via: "delete", family: "new",
                                         line: try location(f, "MISMATCH: sized"), allocLine: try location(f, "ALLOC: sized")))
            }
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "mismatch: bad_alloc caught\n")
                #expect(run.stderrLines.count == expected.count, "\(run.stderrText)")
                #expect(run.stderrLines.allSatisfy { $0.hasPrefix("memtrack: mismatched-") }, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blocks.isEmpty, "every block was freed normally: \(dir.blockSizes)")
                #expect(dir.badFrees.count == expected.count)

                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.isEmpty)
                var got: Set<Expected> = []
                for b in report.badFrees {
                    let place = (b.attributed ?? "").split(separator: " ").last.map(String.init) ?? ""
                    let allocPlace = ((b.raw["alloc_location"] as? String) ?? "").split(separator: " ").last.map(String.init) ?? ""
                    got.insert(Expected(kind: b.kind, via: (b.raw["via"] as? String) ?? "", family: (b.raw["family"] as? String) ?? "",
                                        line: place.split(separator: "/").last.map(String.init) ?? place,
                                        allocLine: allocPlace.split(separator: "/").last.map(String.init) ?? allocPlace))
                    if b.kind == "mismatched-size" {
                        #expect((b.raw["freed_size"] as? NSNumber)?.intValue == 8)
                        #expect((b.raw["size"] as? NSNumber)?.intValue == 64)
                    } else {
                        #expect(b.raw["freed_size"] is NSNull)
                    }
                }
                #expect(got == expected, "missing: \(expected.subtracting(got)); unexpected: \(got.subtracting(expected))")
            }
        }

        @Test("own_new: a program that replaces operator new alone gets no mismatch reports, and its leak is found")
        func programOwnNew() throws {
            let program = try E2E.example("own_new")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.badFrees.isEmpty)
                #expect(dir.blockSizes == [4])
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [try location("own_new.cpp", "LEAK: own new"): [4]])
            }
        }

        @Test("big_double_free: a 2 MiB block freed twice by a thread, too large to hold back, still has all three stacks")
        func largeDoubleFree() throws {
            let program = try E2E.example("big_double_free")
            let f = "big_double_free.c"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderrLines.count == 1 && run.stderrText.hasPrefix("memtrack: double free of "), "\(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.isEmpty)
                #expect(report.badFrees.count == 1)
                let bad = try #require(report.badFrees.first)
                #expect(bad.kind == "double-free")
                #expect((bad.raw["size"] as? NSNumber)?.intValue == 2 << 20)
                #expect(frame(bad.attributed ?? "", isAt: try location(f, "BIG: second free")), "\(bad.attributed ?? "nil")")
                #expect(frame((bad.raw["alloc_location"] as? String) ?? "", isAt: try location(f, "BIG: malloc")), "\(bad.raw["alloc_location"] ?? "nil")")
                #expect(frame((bad.raw["free_location"] as? String) ?? "", isAt: try location(f, "BIG: first free")), "\(bad.raw["free_location"] ?? "nil")")
            }
        }

        @Test("quarantine_history: a block among the last 256 to leave a thread's quarantine keeps its stacks; one that left earlier is still a double free")
        func quarantineHistory() throws {
            let program = try E2E.example("quarantine_history")
            let f = "quarantine_history.c"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderrLines.count == 2 && run.stderrLines.allSatisfy { $0.hasPrefix("memtrack: double free of ") }, "\(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.isEmpty)
                let bad = report.badFrees.sorted { ($0.raw["seq"] as? NSNumber)?.intValue ?? 0 < ($1.raw["seq"] as? NSNumber)?.intValue ?? 0 }
                try #require(bad.count == 2 && bad.allSatisfy { $0.kind == "double-free" }, "\(report.badFrees.map(\.raw))")
                let recent = bad[0], forgotten = bad[1]
                #expect(frame(recent.attributed ?? "", isAt: try location(f, "HISTORY: recent second free")), "\(recent.attributed ?? "nil")")
                #expect((recent.raw["size"] as? NSNumber)?.intValue == 24)
                #expect(frame((recent.raw["alloc_location"] as? String) ?? "", isAt: try location(f, "HISTORY: recent malloc")), "\(recent.raw["alloc_location"] ?? "nil")")
                #expect(frame((recent.raw["free_location"] as? String) ?? "", isAt: try location(f, "HISTORY: recent first free")), "\(recent.raw["free_location"] ?? "nil")")
                #expect(frame(forgotten.attributed ?? "", isAt: try location(f, "HISTORY: forgotten second free")), "\(forgotten.attributed ?? "nil")")
                #expect(forgotten.raw["free_location"] as? String == nil && forgotten.raw["alloc_location"] as? String == nil, "\(forgotten.raw)")
            }
        }

        @Test("backlog_double_free: a double free of a block that waited in the backlog (only its stack's id kept) still has its size, allocation and first free")
        func backlogDoubleFree() throws {
            let f = "backlog_double_free.c"
            // A settle time far beyond the run: the block is in the backlog, not yet a record, when it is freed.
            let bad = try doubleFrees(of: "backlog_double_free", settleMs: 60000)
            try #require(bad.count == 1, "\(bad.map(\.raw))")
            try expectDoubleFree(bad[0], size: 40, at: location(f, "BACKLOG: second free"),
                                 allocatedAt: location(f, "BACKLOG: kept malloc"), firstFreedAt: location(f, "BACKLOG: first free"))
        }

        @Test("recorded_double_free: double frees of blocks whose records were written have their size, allocation and first free, with the record's removal still queued and done")
        func recordedDoubleFree() throws {
            let f = "recorded_double_free.c"
            // The program waits until each record is written (and late's removed) before it frees.
            let bad = try doubleFrees(of: "recorded_double_free", settleMs: 20)
            try #require(bad.count == 2, "\(bad.map(\.raw))")
            for (event, name, size) in [(bad[0], "early", 40), (bad[1], "late", 72)] {
                try expectDoubleFree(event, size: size, at: location(f, "RECORDED: \(name) second free"),
                                     allocatedAt: location(f, "RECORDED: \(name) malloc"), firstFreedAt: location(f, "RECORDED: \(name) first free"))
            }
        }

        @Test("cxx_new: blocks from operator new and new[] are recorded as such, with the program's call site first")
        func newRecords() throws {
            let program = try E2E.example("cxx_new")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: 0))
                #expect(run.exitedNormally && run.status == 0)
                let dir = try onlyRunDirectory(scratch.memDir)
                let bySize = Dictionary(dir.blocks.values.map { ($0.size ?? -1, $0) }, uniquingKeysWith: { a, _ in a })
                #expect(bySize[24]?.fields["via"] == "new" && bySize[24]?.fields["family"] == "new")
                #expect(bySize[77]?.fields["via"] == "new[]" && bySize[77]?.fields["family"] == "new[]")
                #expect(bySize[101]?.fields["family"] == "new", "a string's buffer comes from operator new")
            }
        }
    }
}
