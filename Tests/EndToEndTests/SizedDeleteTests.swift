// SizedDeleteTests.swift: a sized delete is checked against the allocation's size from memory;
// the stacks file is read only when a mismatch is reported (issue 20, item 1). Before, each
// sized delete of a block waiting in the backlog opened and scanned `stacks`.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct SizedDeletes {
        @Test("50,000 sized deletes of the right size: no report, and `stacks` is not opened for them (strace counts the opens)",
              .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (.ci/run installs it)"))
        func rightSizeTouchesNoFile() throws {
            let program = try E2E.example("sized_delete")
            try withScratch { scratch in
                let trace = scratch.root.appendingPathComponent("strace.out")
                // The tracker's settings go to the program only (strace -E), not to strace itself.
                var tracked: [String: String] = [:]
                try Tracking(memDir: scratch.memDir).apply(to: &tracked)
                let settings = tracked.sorted { $0.key < $1.key }.flatMap { ["-E", "\($0.key)=\($0.value)"] }
                let run = runProgram("/usr/bin/strace", ["-f", "-e", "trace=openat", "-o", trace.path] + settings + [program, "50000"],
                                     environment: E2E.cleanEnvironment(), timeout: 300)
                #expect(run.exitedNormally && run.status == 0 && run.stdoutText == "1249975000\n", "\(run.statusDescription)\n\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.badFrees.isEmpty, "a right-size delete is no mismatch")
                let opens = try String(contentsOf: trace, encoding: .utf8).split(separator: "\n").filter { $0.contains("/stacks\"") }
                // The tracker's own opens (creating the file, the writer's appends) are a handful;
                // one per delete of a backlog block was thousands (851 for the benchmark's threaded).
                #expect(opens.count < 100, "\(opens.count) opens of stacks")
            }
        }
    }
}
