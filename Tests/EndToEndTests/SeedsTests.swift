// SeedsTests.swift: the seeds' scenario (Examples/seeds.c), file by file and through memdir.

import Foundation
import Testing

/// Every end-to-end suite nests in here. They run in parallel, as many at a time as there are
/// cores; a test whose outcome depends on time (Processes' idle: files within MEM_SETTLE_MS +
/// 200 ms) takes the machine to itself with `.machineToItself` (Harness.swift, MachineLock).
@Suite(.sharesTheMachine) enum EndToEnd {}

/// `p3=0x...` / `p4=0x...` lines printed by `seeds --addresses`.
func printedAddresses(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
    }
    return result
}

extension EndToEnd {
    @Suite struct Seeds {
        /// MEM_SETTLE_MS unset (default 50) and 0 (synchronous).
        @Test("seeds: one 30-byte leak at p3, one double free of p4", arguments: [nil, 0] as [Int?])
        func seedsRecord(settleMs: Int?) throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let run = try runTracked(seeds, ["--addresses"], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "seeds: \(run.statusDescription)\n\(run.stderrText)")
                let printed = printedAddresses(run.stdoutText)
                let p3 = try #require(printed["p3"]), p4 = try #require(printed["p4"])

                let dir = try onlyRunDirectory(scratch.memDir)
                // Exactly one live block: p3, 30 bytes, from malloc.
                #expect(Array(dir.blocks.keys) == ["\(p3).mem"])
                let block = try #require(dir.blocks["\(p3).mem"])
                #expect(block.address == p3)
                #expect(block.size == 30)
                #expect(block.fields["via"] == "malloc")
                #expect(block.int("thread") == dir.pid)
                #expect(!block.stack.isEmpty)

                // Exactly one bad free: the second free(p4).
                #expect(dir.badFrees.count == 1)
                let (badName, bad) = try #require(dir.badFrees.first)
                #expect(badName.hasPrefix("bad-") && badName.hasSuffix(".free"))
                #expect(badName == "bad-\(bad.fields["seq"] ?? "?").free")
                #expect(bad.kind == "double-free")
                #expect(bad.address == p4)
                #expect(bad.fields["via"] == "free")
                // p4's size is known while its record has not settled (the catalog's Record format, bad frees): always
                // by default (freed at once), never with MEM_SETTLE_MS=0 (its record was written).
                #expect(bad.size == (settleMs == 0 ? nil : 40), "p4's size: \(bad.fields)")

                // One stderr line, and it names p4.
                #expect(run.stderrLines.count == 1, "stderr: \(run.stderrText)")
                #expect(run.stderrLines.filter { $0.contains(p4) }.count == 1, "stderr: \(run.stderrText)")

                // process / status
                #expect(isExecutable(dir.exe, seeds), "\(dir.exe ?? "nil")")
                #expect(dir.args == [seeds, "--addresses"])
                #expect(dir.pid.map { dir.name == String($0) } == true)
                #expect(dir.parent == nil)
                #expect(dir.process["settle-ms"] == [String(settleMs ?? 50)])
                #expect(dir.process["depth"] == ["12"])
                #expect(dir.state == "exit")
                #expect(dir.status["code"] == "0")
                #expect(dir.counter("unrecorded-blocks") == 0)
                #expect(dir.counter("unremoved-records") == 0)
                #expect(dir.counter("unrecorded-events") == 0)
                #expect(dir.files.contains("modules"))
                #expect(dir.modules.contains { _ in true })
            }
        }

        /// Without arguments seeds prints nothing, with or without the tracker. (Without the
        /// tracker glibc aborts at the second free(p4); with it, the program returns 0.)
        @Test("seeds: stdout unchanged by the tracker, exit status 0", arguments: [nil, 0] as [Int?])
        func seedsOutputUnchanged(settleMs: Int?) throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let plain = runPlain(seeds, currentDirectory: scratch.root)
                let tracked = try runTracked(seeds, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(tracked.stdout == plain.stdout)
                #expect(tracked.stdout.isEmpty)
                #expect(tracked.exitedNormally && tracked.status == 0, "\(tracked.statusDescription)")
                #expect(tracked.stderrLines.count == 1)
            }
        }

        @Test("seeds: memdir resolve names the p3 malloc and the second free(p4)", arguments: [nil, 0] as [Int?])
        func seedsResolve(settleMs: Int?) throws {
            let seeds = try E2E.example("seeds")
            let leakLine = try location("seeds.c", "LEAK: p3")
            let doubleFreeLine = try location("seeds.c", "DOUBLE-FREE: p4")
            try withScratch { scratch in
                _ = try runTracked(seeds, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.count == 1)
                let leak = try #require(report.leaks.first)
                #expect(leak.blocks == 1 && leak.bytes == 30)
                #expect(leak.attributed.map { frame($0, isAt: leakLine) } == true, "leak at \(leak.attributed ?? "nil"), want \(leakLine)")
                #expect(frame(leak.frames.first ?? "", isAt: leakLine), "\(leak.frames)")
                #expect(leak.frames.first?.hasPrefix("main ") == true, "\(leak.frames)")

                #expect(report.badFrees.count == 1)
                let bad = try #require(report.badFrees.first)
                #expect(bad.kind == "double-free")
                #expect(frame(bad.frames.first ?? "", isAt: doubleFreeLine), "\(bad.frames), want \(doubleFreeLine)")
                #expect(bad.frames.first?.hasPrefix("main ") == true, "\(bad.frames)")

                // Where p4 was allocated and first freed.
                let allocLine = try location("seeds.c", "ALLOC: p4")
                let firstFreeLine = try location("seeds.c", "FIRST-FREE: p4")
                // The record carries them when the tracker still knows them (the catalog's Record format: optional);
                // with the default settings it does.
                let allocKnown = bad.raw["alloc_location"] is String
                let freeKnown = bad.raw["free_location"] is String
                if settleMs == nil { #expect(allocKnown && freeKnown, "\(bad.raw)") }
                if allocKnown {
                    #expect((bad.raw["alloc_location"] as? String).map { frame($0, isAt: allocLine) } == true, "\(bad.raw)")
                }
                if freeKnown {
                    #expect((bad.raw["free_location"] as? String).map { frame($0, isAt: firstFreeLine) } == true, "\(bad.raw)")
                }

                // The text report: a few exact lines. addr2line names the source as the compiler
                // saw it: Examples/ is make's working directory.
                let src = E2E.examplesSource.path
                let text = try memdir(["resolve", scratch.memDir.path])
                #expect(text.exitedNormally && text.status == 0, "\(text.statusDescription) \(text.stderrText)")
                let lines = text.stdoutText.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                // Its kind is the tracker's leak check's: definitely lost, or not classified without one.
                let classified = FileManager.default.fileExists(atPath: scratch.memDir.path + "/\(try onlyRunDirectory(scratch.memDir).name)/leak-check")
                let kind = classified ? "definitely lost" : "not classified"
                #expect(lines.contains("\(kind): 1 block, 30 bytes at main \(src)/\(leakLine)"), "\(text.stdoutText)")
                let doubleFree = allocKnown ? "(free, 40 bytes) at main \(src)/\(doubleFreeLine)" : " at main \(src)/\(doubleFreeLine)"
                #expect(lines.contains { $0.hasPrefix("double-free of 0x") && $0.hasSuffix(doubleFree) }, "\(text.stdoutText)")
                #expect(!allocKnown || lines.contains("allocated at main \(src)/\(allocLine)"), "\(text.stdoutText)")
                #expect(!freeKnown || lines.contains("first freed at main \(src)/\(firstFreeLine)"), "\(text.stdoutText)")
                #expect(lines.contains(classified ? "total: 1 lost block, 30 bytes; 1 bad free in 1 process"
                                                  : "total: 0 lost blocks, 0 bytes; 1 bad free in 1 process"), "\(text.stdoutText)")
            }
        }

        @Test("MEM_DEPTH bounds every stack", arguments: [1, 2, 3])
        func depth(_ depth: Int) throws {
            let seeds = try E2E.example("seeds")
            let leakLine = try location("seeds.c", "LEAK: p3")
            try withScratch { scratch in
                let run = try runTracked(seeds, [], Tracking(memDir: scratch.memDir, depth: depth))
                #expect(run.exitedNormally && run.status == 0)
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.process["depth"] == [String(depth)])
                let block = try #require(dir.blocks.values.first)
                #expect(block.stack.count == depth)
                let bad = try #require(dir.badFrees.values.first)
                #expect(bad.stack.count == depth)
                // The first frame is still the caller: resolution does not need the rest.
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.first?.attributed.map { frame($0, isAt: leakLine) } == true)
            }
        }

        @Test("seeds: memdir list counts one 30-byte leak and one double free")
        func seedsList() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                _ = try runTracked(seeds, [], Tracking(memDir: scratch.memDir))
                let report = try listReport(scratch.memDir)
                #expect(report.leaks.count == 1)
                #expect(report.leaks.first.map { $0.blocks == 1 && $0.bytes == 30 } == true)
                #expect(report.badFrees.count == 1)
                #expect(report.badFrees.first?.kind == "double-free")
                for by in ["caller", "frame", "stack"] {
                    let grouped = try listReport(scratch.memDir, extra: ["--by", by])
                    #expect(grouped.leaks.count == 1, "--by \(by)")
                    #expect(grouped.totalLeakedBytes == 30, "--by \(by)")
                }
            }
        }

        @Test("memdir run: the program's exit status, the report, --error-exitcode")
        func memdirRun() throws {
            let seeds = try E2E.example("seeds")
            let leakLine = try location("seeds.c", "LEAK: p3")
            let output = try E2E.example("output")
            try withScratch { scratch in
                // seeds frees p4 twice: the gate's 23, unless --error-exitcode 0 turns it off.
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--error-exitcode", "0", "--", seeds], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect((run.stdoutText + run.stderrText).contains(leakLine), "\(run.stdoutText)\n\(run.stderrText)")
                #expect(try runDirectories(scratch.memDir).count == 1)
            }
            try withScratch { scratch in
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--error-exitcode", "9", "--", seeds],
                                     currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 9, "\(run.statusDescription)\n\(run.stderrText)")
            }
            try withScratch { scratch in
                // output exits 3 and leaks: when no leak kind fails the run, memdir run exits 3.
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--errors-for-leak-kinds", "none", "--", output],
                                     currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 3, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdoutText.contains(runPlain(output).stdoutText), "the program's own stdout passes through")
            }
            try withScratch { scratch in
                // --json-fd: the report on a descriptor of its own, the program's stdout untouched.
                let allocKinds = try E2E.example("alloc_kinds")
                let memdirPath = try E2E.memdirPath()
                let jsonFile = scratch.root.appendingPathComponent("report.json")
                let run = runProgram("/bin/sh", ["-c", "exec \"$0\" run --dir \"$1\" --json-fd 3 --error-exitcode 0 --show-leak-kinds all -- \"$2\" 3>\"$3\"",
                                                 memdirPath, scratch.memDir.path, allocKinds, jsonFile.path],
                                     environment: E2E.cleanEnvironment(), currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdoutText == "alloc_kinds: 9 leaks\n")
                var result = run
                result.stdout = try Data(contentsOf: jsonFile)
                let report = try reportView(try parseJSON(result))
                #expect(report.totalLeakedBlocks == 9 && report.totalLeakedBytes == 6254)
            }
        }
    }
}
