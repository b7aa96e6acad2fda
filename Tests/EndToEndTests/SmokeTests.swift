// SmokeTests.swift: the fast tier's one end-to-end test. The fast tier is the unit tests and this:
//
//     swift build && swift test --skip-build --filter 'MemdirKitTests|EndToEnd/Smoke'
//
// (seconds once Examples/ is built; the whole suite is `swift test`). It runs what a user runs,
// `memdir run -- PROGRAM`: the real libmemtrack.so preloaded into a leaky example, its leak check
// at exit, addr2line, and the gate.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct Smoke {
        @Test("smoke: memdir run -- seeds finds its one leak, definitely lost at its line, and its double free; the gate says 23")
        func seeds() throws {
            let seeds = try E2E.example("seeds")
            let leakLine = try location("seeds.c", "LEAK: p3")
            let doubleFreeLine = try location("seeds.c", "DOUBLE-FREE: p4")
            try withScratch { scratch in
                let jsonFile = scratch.root.appendingPathComponent("report.json")
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--json-file", jsonFile.path, "--", seeds],
                                     currentDirectory: scratch.root)
                // 23: the gate, for a definitely lost block and a bad free.
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)\n\(run.stderrText)")
                var result = run
                result.stdout = try Data(contentsOf: jsonFile)
                let report = try reportView(try parseJSON(result))
                #expect(report.processes.count == 1)
                let leak = try #require(report.leaks.first, "no leak in \(report.raw)")
                #expect(report.leaks.count == 1 && leak.kind == "definitely_lost" && leak.blocks == 1 && leak.bytes == 30,
                        "\(report.leaks.map { "\($0.kind) \($0.blocks) \($0.bytes) \($0.attributed ?? "?")" })")
                #expect(leak.attributed.map { frame($0, isAt: leakLine) } == true, "at \(leak.attributed ?? "nil"), want \(leakLine)")
                #expect(leak.attributed?.hasPrefix("main ") == true, "\(leak.attributed ?? "nil")")
                let bad = try #require(report.badFrees.first, "no bad free in \(report.raw)")
                #expect(report.badFrees.count == 1 && bad.kind == "double-free")
                #expect(frame(bad.frames.first ?? "", isAt: doubleFreeLine), "\(bad.frames), want \(doubleFreeLine)")
            }
        }
    }
}
