// WriterTests.swift: the deferred writer against a program that frees while the writer works.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct Writer {
        /// Before the fix, the writer took removals off the queues and the process could exit
        /// before it had done them: 2 to 30 freed blocks kept their files in about one run in ten.
        @Test("blocks living about the settle time, all freed: the record ends empty, every time",
              arguments: ["", "realloc"])
        func noOrphans(mode: String) throws {
            let program = try E2E.example("settle_race")
            // tmpfs where there is one: the race needs files to be cheap enough that the writer
            // is still busy when the program ends (on this VM's ext4 it hid).
            let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
            for round in 0..<12 {
                let memDir = URL(fileURLWithPath: base)
                    .appendingPathComponent("memdir-writer-test-\(getpid())-\(mode)-\(round)")
                try? FileManager.default.removeItem(at: memDir)
                defer { try? FileManager.default.removeItem(at: memDir) }
                do {
                    let run = try runTracked(program, mode.isEmpty ? [] : [mode],
                                             Tracking(memDir: memDir, settleMs: 1))
                    #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)")
                    let dir = try onlyRunDirectory(memDir)
                    #expect(dir.blocks.isEmpty, "orphan records: \(dir.blocks.keys.sorted())")
                    #expect(dir.state == "exit")
                    #expect(dir.status["unremoved-records"] == "0")
                }
            }
        }
    }
}
