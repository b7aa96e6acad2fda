// LsanMeaningTests.swift: LeakSanitizer's annotations and suppressions with LeakSanitizer's
// meaning (issue 17, item 8): a block allocated between __lsan_disable() and __lsan_enable() is
// never reported and is still a root; a block an LSan `leak:` line suppresses takes with it what
// only it reaches. The reference is LeakSanitizer itself (gcc -fsanitize=leak).

import Foundation
import Testing

extension EndToEnd {
    @Suite struct LsanMeaning {
        /// The disabled block holds the only pointer to a 77-byte block made after __lsan_enable().
        /// LSan reports only the plain 33-byte leak; memdir reported the 77 bytes definitely lost
        /// too, because the disabled block was left out of the check altogether.
        @Test func disabledBlockIsARoot() throws {
            let program = try E2E.example("lsan_disabled")
            let plain = try location("lsan_disabled.c", "LSAN-DISABLED-PLAIN")
            for settle in [50, 0] {
                try withScratch { scratch in
                    let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settle))
                    #expect(run.exitedNormally && run.status == 0 && run.stdoutText == "done\n", "\(run.statusDescription)")
                    let report = try resolveReport(scratch.memDir)
                    let lost = report.leaks.filter { $0.kind == "definitely_lost" || $0.kind == "indirectly_lost" }
                    #expect(lost.map(\.bytes) == [33], "settle \(settle): \(lost)")
                    #expect(lost.first.map { frame($0.attributed ?? "", isAt: plain) } == true, "\(lost)")
                    // The disabled block (32 bytes) is not reported at all; what it holds is reachable.
                    #expect(!report.leaks.contains { $0.bytes == 32 }, "\(report.leaks)")
                    #expect(report.leaks.filter { $0.bytes == 77 }.map(\.kind) == ["still_reachable"], "\(report.leaks)")
                }
            }
        }

        /// LSan's own suppressions_file test (Examples/lsan_suppressed.c): the 666-byte block,
        /// allocated in LSanTestLeakingFunc, holds the only pointer to a 777-byte block allocated
        /// elsewhere. LSan's `leak:*LSanTestLeakingFunc*` leaves only the 1,337 bytes, because a
        /// suppressed block is a root; memdir reported the 777 bytes indirectly lost too.
        /// valgrind's entries match each loss record by its own stack: there the 777 bytes stay.
        @Test("an LSan `leak:` line suppresses the block and what only it reaches, as LeakSanitizer does; a valgrind entry suppresses the block alone, as valgrind does")
        func suppressedBlockTakesItsClique() throws {
            let program = try E2E.example("lsan_suppressed")
            try withScratch { scratch in
                let lsanFile = scratch.root.appendingPathComponent("lsan.supp")
                try Data("leak:*LSanTestLeakingFunc*\n".utf8).write(to: lsanFile)
                let valgrindFile = scratch.root.appendingPathComponent("valgrind.supp")
                try Data("{\n   leaking-func\n   Memcheck:Leak\n   ...\n   fun:LSanTestLeakingFunc\n}\n".utf8).write(to: valgrindFile)

                // The reference: LeakSanitizer itself, with the same file.
                let sanitized = scratch.root.appendingPathComponent("lsan_suppressed_lsan").path
                let build = runProgram("/usr/bin/gcc", ["-g", "-fsanitize=leak", E2E.examplesSource.appendingPathComponent("lsan_suppressed.c").path,
                                                        "-o", sanitized], environment: E2E.cleanEnvironment())
                try #require(build.exitedNormally && build.status == 0, "gcc -fsanitize=leak: \(build.stderrText)")
                var lsanEnvironment = E2E.cleanEnvironment()
                lsanEnvironment["LSAN_OPTIONS"] = "suppressions=\(lsanFile.path)"
                let lsan = runProgram(sanitized, [], environment: lsanEnvironment)
                #expect(lsan.stderrText.contains("SUMMARY: LeakSanitizer: 1337 byte(s) leaked in 1 allocation(s)."), "\(lsan.stderrText)")

                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let lost = ["definitely_lost", "indirectly_lost"]
                let unsuppressed = try resolveReport(scratch.memDir).leaks.filter { lost.contains($0.kind) }
                #expect(unsuppressed.map { "\($0.kind) \($0.bytes)" }.sorted() == ["definitely_lost 1337", "definitely_lost 666", "indirectly_lost 777"],
                        "\(unsuppressed)")

                let withLSan = try resolveReport(scratch.memDir, extra: ["--suppressions", lsanFile.path])
                let leftByLSan = withLSan.leaks.filter { lost.contains($0.kind) }
                #expect(leftByLSan.map { "\($0.kind) \($0.bytes)" } == ["definitely_lost 1337"], "\(leftByLSan)")
                let at1337 = try location("lsan_suppressed.c", "LSAN-SUPPRESSED-1337")
                #expect(leftByLSan.first.map { frame($0.attributed ?? "", isAt: at1337) } == true, "\(leftByLSan)")

                let withValgrind = try resolveReport(scratch.memDir, extra: ["--suppressions", valgrindFile.path])
                let leftByValgrind = withValgrind.leaks.filter { lost.contains($0.kind) }
                #expect(leftByValgrind.map { "\($0.kind) \($0.bytes)" }.sorted() == ["definitely_lost 1337", "indirectly_lost 777"],
                        "\(leftByValgrind)")
                if let valgrind = valgrindPath {
                    let reference = runProgram(valgrind, ["--leak-check=full", "--suppressions=\(valgrindFile.path)", program],
                                               environment: E2E.cleanEnvironment(), timeout: 300)
                    let summary = try #require(valgrindLeakSummary(reference.stderrText), "\(reference.stderrText)")
                    #expect(summary["definitely lost"]! == (1337, 1) && summary["indirectly lost"]! == (777, 1), "\(reference.stderrText)")
                }
            }
        }
    }
}
