// LsanMeaningTests.swift: LeakSanitizer's annotations with LeakSanitizer's meaning (issue 17,
// item 8): a block allocated between __lsan_disable() and __lsan_enable() is never reported and
// is still a root.

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
    }
}
