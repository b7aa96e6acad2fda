// BelowMainAndFreeSuppressionTests.swift: stacks stop at main in every output unless
// --show-below-main=yes; bad frees are suppressed by valgrind's Memcheck:Free entries (valgrind's
// own, and memdir's --gen-suppressions), counted apart, and never fail the gate.

import Foundation
import Testing

/// `memdir run --dir DIR --json-file DIR/../report.json [extra] -- program args`: the result and
/// the JSON report.
func runWithJSONFile(_ scratch: Scratch, _ extra: [String], _ program: String, _ arguments: [String] = [],
                     timeout: Double = 120) throws -> (RunResult, ReportView) {
    let file = scratch.root.appendingPathComponent("report-\(UInt32.random(in: 0...UInt32.max)).json")
    let dir = scratch.root.appendingPathComponent("run-\(UInt32.random(in: 0...UInt32.max))")
    let run = runProgram(try E2E.memdirPath(), ["run", "--dir", dir.path, "--json-file", file.path] + extra + ["--", program] + arguments,
                         environment: E2E.cleanEnvironment(), currentDirectory: scratch.root, timeout: timeout)
    var json = run
    json.stdout = (try? Data(contentsOf: file)) ?? Data()
    return (run, try reportView(try parseJSON(json)))
}

/// The `{ ... }` entries among a report's lines (--gen-suppressions), one line each, as printed.
func suppressionEntries(_ lines: [String]) -> [String] {
    var result: [String] = [], inside = false
    for line in lines {
        if line == "{" { inside = true }
        if inside { result.append(line) }
        if line == "}" { inside = false }
    }
    return result
}

extension EndToEnd {
    @Suite struct BelowMain {
        @Test("stacks stop at main in text, JSON, list and generated suppressions; --show-below-main=yes shows the rest")
        func stopsAtMain() throws {
            let seeds = try E2E.example("seeds")
            let leakLine = try location("seeds.c", "LEAK: p3")
            try withScratch { scratch in
                let (run, report) = try runWithJSONFile(scratch, ["--gen-suppressions"], seeds)
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)")
                let leak = try #require(report.leaks.first)
                #expect(leak.frames.count == 1 && frame(leak.frames[0], isAt: leakLine), "\(leak.frames)")
                let bad = try #require(report.badFrees.first)
                #expect(bad.frames.count == 1 && bad.frames[0].hasPrefix("main "), "\(bad.frames)")
                for key in ["alloc_stack", "free_stack"] {
                    #expect((bad.raw[key] as? [Any])?.count == 1, "\(key): \(bad.raw[key] ?? "nil")")
                }
                // The text report: no frame below main, and the entries end at main.
                #expect(!run.stderrText.contains("__libc_start") && !run.stderrText.contains("_start ("), "\(run.stderrText)")
                #expect(run.stderrText.contains("   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:main\n}\n"))
                #expect(run.stderrText.contains("   Memcheck:Free\n   fun:free\n   fun:main\n}\n"))

                let (_, whole) = try runWithJSONFile(scratch, ["--show-below-main=yes"], seeds)
                let frames = try #require(whole.leaks.first?.frames)
                #expect(frames.count > 2 && frames.first.map { frame($0, isAt: leakLine) } == true, "\(frames)")
                #expect(frames.contains { $0.contains("__libc_start") } && frames.last?.hasPrefix("_start") == true, "\(frames)")

                // list resolves nothing: main is found by the executable's symbol table.
                let dir = scratch.root.appendingPathComponent("seeds-run")
                _ = try memdir(["run", "--dir", dir.path, "--", seeds])
                let listed = try listReport(dir)
                #expect(listed.leaks.first?.frames.count == 1, "\(listed.leaks.first?.frames ?? [])")
                #expect((try listReport(dir, extra: ["--show-below-main", "yes"])).leaks.first?.frames.count == frames.count)
                #expect(try memdir(["list", dir.path, "--show-below-main=maybe"]).status == 2)
            }
        }
    }

    @Suite struct FreeSuppressions {
        @Test("memdir's --gen-suppressions entries for mismatch's bad frees suppress all of them: exit 0, counted apart")
        func generatedFreeEntries() throws {
            let program = try E2E.example("mismatch")
            try withScratch { scratch in
                let (first, report) = try runWithJSONFile(scratch, ["--gen-suppressions"], program)
                #expect(first.exitedNormally && first.status == 23)
                #expect(report.badFrees.count == 7)
                let entries = suppressionEntries(first.stderrLines)
                #expect(entries.filter { $0 == "   Memcheck:Free" }.count == 7, "\(first.stderrText)")
                let file = scratch.root.appendingPathComponent("mismatch.supp")
                try Data((entries.joined(separator: "\n") + "\n").utf8).write(to: file)

                let (run, suppressed) = try runWithJSONFile(scratch, ["--suppressions", file.path], program)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(suppressed.badFrees.isEmpty)
                let summary = try #require(suppressed.raw["summary"] as? [String: Any])
                #expect(summary["bad_frees"] as? Int == 0 && summary["suppressed_bad_frees"] as? Int == 7, "\(summary)")
                #expect(suppressed.processes.first?.raw["suppressed_bad_frees"] as? Int == 7)
                let uses = try #require(suppressed.raw["suppressions"] as? [[String: Any]])
                #expect(uses.reduce(0) { $0 + (($1["bad_frees"] as? Int) ?? 0) } == 7, "\(uses)")
                #expect(run.stderrText.contains("\nsuppressed bad frees: 7\n"), "\(run.stderrText)")
                #expect(run.stderrText.contains("\nno leaks, no bad frees in 1 process\n"), "\(run.stderrText)")
            }
        }

        @Test("valgrind's own Memcheck:Free entries for mismatch suppress the bad frees valgrind reports",
              .enabled(if: valgrindPath != nil, "valgrind is not installed"))
        func valgrindFreeEntries() throws {
            let program = try E2E.example("mismatch")
            let valgrind = try #require(valgrindPath)
            try withScratch { scratch in
                let reference = runProgram(valgrind, ["--gen-suppressions=all", program], environment: E2E.cleanEnvironment(),
                                           currentDirectory: scratch.root)
                // valgrind aborts at mismatch's huge operator new (it cannot throw), after the frees.
                let entries = suppressionEntries(reference.stderrLines)
                // valgrind 3.19 reports the six mismatched frees (a sized delete of the wrong size only
                // from 3.22 on). Its entry for line 39's `delete` (`fun:_ZdlPvm`, `fun:main`) also
                // matches line 47's sized delete of the wrong size: entries name functions, not lines.
                #expect(entries.filter { $0 == "   Memcheck:Free" }.count == 6, "\(reference.stderrText)")
                #expect(entries.contains("   fun:_ZdlPvm"))
                let file = scratch.root.appendingPathComponent("valgrind.supp")
                try Data((entries.joined(separator: "\n") + "\n").utf8).write(to: file)
                let (run, report) = try runWithJSONFile(scratch, ["--suppressions", file.path], program)
                let summary = try #require(report.raw["summary"] as? [String: Any])
                #expect(summary["suppressed_bad_frees"] as? Int == 7 && summary["bad_frees"] as? Int == 0, "\(summary)")
                #expect(report.badFrees.isEmpty, "\(report.badFrees.map(\.kind))")
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)")
            }
        }
    }
}
