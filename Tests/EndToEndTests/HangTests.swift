// HangTests.swift: issue 17's hangs (items 9-11), on Examples/hangs.c. Each ran to a timeout or
// an abort under the tracker; untraced each exits 0. The racy ones run several times in the test.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite struct Hangs {
        /// Item 9: a SIGALRM handler forks (a child that only _exits) 300 times while the main
        /// thread allocates. It hung every time in fork's prepare handler (a record table the
        /// interrupted malloc held) or in glibc's malloc lock, which glibc takes in fork because
        /// the tracker's threads make the program multi-threaded.
        @Test func forkInSignalHandler() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["sigfork", "300"], timeout: 60)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "forks done\n")
            for settle in [50, 0, 50] {
                try withScratch { scratch in
                    let result = try runTracked(program, ["sigfork", "300"],
                                                Tracking(memDir: scratch.memDir, settleMs: settle), timeout: 30)
                    #expect(!result.timedOut, "settle \(settle): hung")
                    #expect(result.exitedNormally && result.status == 0, "settle \(settle): \(result.statusDescription)")
                    #expect(result.stdoutText == "forks done\n")
                    #expect(result.stderrText == "", "settle \(settle): \(result.stderrText)")
                    // The parent's record is whole and says the run ended normally.
                    let parent = try runDirectories(scratch.memDir).filter { $0.parent == nil }
                    #expect(parent.count == 1)
                    #expect(parent.first?.state == "exit")
                    #expect(parent.first?.counter("unrecorded-blocks") == 0)
                    let list = try memdir(["list", scratch.memDir.path])
                    #expect(list.status == 0, "\(list.stdoutText)\(list.stderrText)")
                }
            }
        }
    }
}
