// LeakKindTests.swift: memdir's side of leak kinds on real programs: the exit statuses of
// `memdir run` (23, --error-exitcode N and 0), "not classified" after a crash, --json-file,
// suppressions in both formats (valgrind's own generated entries included), and reading a real
// run directory's `leak-check` record.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct LeakKinds {
        @Test("memdir run exits 23 on lost blocks or a bad free by default, N with --error-exitcode N, the program's status with 0")
        func gateStatuses() throws {
            let seeds = try E2E.example("seeds")
            for (args, status) in [([], 23), (["--error-exitcode", "9"], 9), (["--error-exitcode=0"], 0),
                                   (["--errors-for-leak-kinds", "none"], 23)] as [([String], Int32)] {
                try withScratch { scratch in
                    let run = try memdir(["run", "--dir", scratch.memDir.path] + args + ["--", seeds], currentDirectory: scratch.root)
                    #expect(run.exitedNormally && run.status == status, "\(args): \(run.statusDescription)\n\(run.stderrText)")
                    let gateLine = run.stderrLines.filter { $0.hasPrefix("memdir: exit status ") }
                    // p3 is definitely lost (nothing points to it at exit) and p4 is freed twice.
                    let why = args.contains("none") ? "1 bad free" : "1 definitely lost, 1 bad free"
                    #expect(gateLine == (status == 0 ? [] : ["memdir: exit status \(status): \(why)"]), "\(args): \(run.stderrText)")
                }
            }
            // A clean program keeps its own status under the gate.
            try withScratch { scratch in
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--", "/bin/sh", "-c", "exit 5"], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 5, "\(run.statusDescription)\n\(run.stderrText)")
            }
        }

        @Test("a crash: the blocks are not classified, the report says why, the program's status stays")
        func crashIsNotClassified() throws {
            let crash = try E2E.example("crash")
            try withScratch { scratch in
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--", crash, "segv"], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 128 + SIGSEGV, "\(run.statusDescription)\n\(run.stderrText)")
                let lines = run.stderrLines
                #expect(lines.contains("      not classified: 7,035 bytes in 3 blocks (killed by SIGSEGV)"), "\(run.stderrText)")
                #expect(lines.contains("    not classified: 7,035 bytes in 3 blocks"), "the total: \(run.stderrText)")
                #expect(lines.filter { $0.hasSuffix("definitely lost: 0 bytes in 0 blocks") }.count == 2, "\(run.stderrText)")
                #expect(lines.contains("memdir: note: 3 blocks not classified (killed by SIGSEGV): not counted as lost"), "\(run.stderrText)")
                #expect(!lines.contains { $0.hasPrefix("memdir: exit status") }, "\(run.stderrText)")
                let leakLine = try location("crash.c", "LEAK: crash 1234")
                #expect(lines.contains { $0.hasPrefix("    not classified: 1 block, 1,234 bytes at main ") && $0.hasSuffix(leakLine) },
                        "\(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                let process = try #require(report.processes.first?.raw)
                let check = try #require(process["leak_check"] as? [String: Any])
                #expect(check["classified"] as? Bool == false && check["unclassified_reason"] as? String == "killed by SIGSEGV")
                #expect(report.leaks.map(\.kind) == ["not_classified", "not_classified", "not_classified"])
            }
        }

        @Test("--json-file: the JSON report in a file, the program's stdout alone on stdout; a bad path exits 11 before running")
        func jsonFile() throws {
            let output = try E2E.example("output")
            try withScratch { scratch in
                let file = scratch.root.appendingPathComponent("report.json")
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--json-file", file.path, "--error-exitcode", "0", "--", output],
                                     currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 3, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdout == runPlain(output).stdout)
                var saved = run
                saved.stdout = try Data(contentsOf: file)
                let report = try reportView(try parseJSON(saved))
                #expect(report.processes.count == 1)
                #expect(report.leaks.map(\.bytes) == [64], "the one block output leaves")

                let listed = scratch.root.appendingPathComponent("list.json")
                let list = try memdir(["list", scratch.memDir.path, "--json-file", listed.path])
                #expect(list.exitedNormally && list.status == 0 && list.stdoutText.hasPrefix("process "))
                #expect(try String(contentsOf: listed, encoding: .utf8).hasPrefix("{\n  \"schema\": \"memdir-report/2\""))
            }
            try withScratch { scratch in
                let bad = scratch.root.appendingPathComponent("missing/report.json").path
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--json-file", bad, "--", output], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 11)
                #expect(run.stderrText == "memdir: error: cannot write \(bad): no such file or directory\n")
                #expect(run.stdout.isEmpty && !FileManager.default.fileExists(atPath: scratch.memDir.path), "the program did not run")
            }
        }

        @Test("suppressions: an LSan file and a valgrind file suppress seeds' leak; a bad file exits 9 or 10 before running")
        func suppressionFiles() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let lsan = scratch.root.appendingPathComponent("lsan.supp")
                try Data("# seeds' deliberate leak\n\nleak:seeds.c\n".utf8).write(to: lsan)
                let valgrind = scratch.root.appendingPathComponent("valgrind.supp")
                try Data("""
                    # valgrind's shape, as --gen-suppressions prints it
                    {
                       seeds-p3
                       Memcheck:Leak
                       fun:malloc
                       fun:main
                    }

                    """.utf8).write(to: valgrind)
                for file in [lsan, valgrind] {
                    try? FileManager.default.removeItem(at: scratch.memDir)
                    let run = try memdir(["run", "--dir", scratch.memDir.path, "--suppressions", file.path, "--error-exitcode", "0", "--", seeds],
                                         currentDirectory: scratch.root)
                    #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                    let lines = run.stderrLines
                    #expect(lines.filter { $0.hasSuffix(" suppressed: 30 bytes in 1 blocks") }.count == 2, "process and total: \(run.stderrText)")
                    let name = file == lsan ? "leak:seeds.c (\(lsan.path):3)" : "seeds-p3 (\(valgrind.path):2)"
                    #expect(lines.contains("  suppressed by \(name): 30 bytes in 1 blocks"), "\(run.stderrText)")
                    let leakAt = ": 1 block, 30 bytes at main \(E2E.examplesSource.path)/\(try location("seeds.c", "LEAK: p3"))"
                    #expect(!lines.contains { $0.hasSuffix(leakAt) }, "\(run.stderrText)")
                }
                let bad = scratch.root.appendingPathComponent("bad.supp")
                try Data("{\n  seeds\n  Memcheck:Leak\n".utf8).write(to: bad)
                try? FileManager.default.removeItem(at: scratch.memDir)
                let malformed = try memdir(["run", "--dir", scratch.memDir.path, "--suppressions", bad.path, "--", seeds], currentDirectory: scratch.root)
                #expect(malformed.exitedNormally && malformed.status == 10)
                #expect(malformed.stderrText == "memdir: error: malformed suppressions file \(bad.path):1: entry not closed with '}'\n")
                let missing = try memdir(["run", "--dir", scratch.memDir.path, "--suppressions", "/nonexistent.supp", "--", seeds],
                                         currentDirectory: scratch.root)
                #expect(missing.exitedNormally && missing.status == 9)
                #expect(!FileManager.default.fileExists(atPath: scratch.memDir.path), "the program did not run")
            }
        }

        @Test("valgrind's own --gen-suppressions entries for cxx_new suppress every block memdir finds there",
              .enabled(if: valgrindPath != nil, "valgrind is not installed"))
        func valgrindGeneratedSuppressions() throws {
            let program = try E2E.example("cxx_new")
            let valgrind = try #require(valgrindPath)
            try withScratch { scratch in
                let reference = runProgram(valgrind, ["--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all", program],
                                           environment: E2E.cleanEnvironment(), currentDirectory: scratch.root)
                #expect(reference.exitedNormally, "\(reference.stderrText)")
                // The entries exactly as valgrind prints them (match-leak-kinds included), with
                // its `==pid==` lines dropped: they match only if memdir's kinds agree.
                let entries = reference.stderrLines.filter { !$0.hasPrefix("==") }
                #expect(entries.filter { $0 == "{" }.count >= 4, "\(reference.stderrText)")
                let file = scratch.root.appendingPathComponent("cxx_new.supp")
                try Data((entries.joined(separator: "\n") + "\n").utf8).write(to: file)

                let jsonFile = scratch.root.appendingPathComponent("report.json")
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--suppressions", file.path, "--show-leak-kinds", "all",
                                      "--json-file", jsonFile.path, "--", program], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                var result = run
                result.stdout = try Data(contentsOf: jsonFile)
                let report = try reportView(try parseJSON(result))
                #expect(report.leaks.isEmpty, "not suppressed: \(report.leaks.map { $0.attributed ?? "?" })")
                let summary = try #require(report.raw["summary"] as? [String: Any])
                let kinds = try #require(summary["leak_kinds"] as? [String: [String: Any]])
                #expect(kinds["suppressed"]?["blocks"] as? Int == 6, "\(kinds)")
            }
        }

        /// Reads the tracker's `leak-check` when it wrote one; until then writes the one the
        /// contract says it writes for seeds (p3 is held by nothing at exit).
        @Test("a real run directory with a leak-check: p3 is definitely lost, the gate fails on it alone")
        func realRunDirectoryWithLeakCheck() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let run = try runTracked(seeds, ["--addresses"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                let p3 = try #require(printedAddresses(run.stdoutText)["p3"])
                let dir = try onlyRunDirectory(scratch.memDir)
                let check = dir.url.appendingPathComponent("leak-check")
                if !FileManager.default.fileExists(atPath: check.path) {
                    let seq = try #require(dir.blocks["\(p3).mem"]?.int("seq"))
                    try Data("memtrack/1 leak-check\nresult complete\nwhen exit\nseq \(seq + 10)\nms 1\nduration-us 10\nthreads 1\nthreads-scanned 1\nblocks 1\nlost \(p3) definitely\nend\n".utf8)
                        .write(to: check)
                }
                let text = try memdir(["resolve", scratch.memDir.path])
                #expect(text.exitedNormally && text.status == 0, "\(text.stderrText)")
                let lines = text.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines.filter { $0.hasSuffix(" definitely lost: 30 bytes in 1 blocks") }.count == 2, "\(text.stdoutText)")
                #expect(lines.contains("    definitely lost: 1 block, 30 bytes at main \(E2E.examplesSource.path)/\(try location("seeds.c", "LEAK: p3"))"),
                        "\(text.stdoutText)")
                #expect(lines.last == "total: 1 lost block, 30 bytes; 1 bad free in 1 process")
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.map(\.kind) == ["definitely_lost"])
                let process = try #require(report.processes.first?.raw)
                #expect((process["leak_check"] as? [String: Any])?["classified"] as? Bool == true)
            }
        }
    }
}
