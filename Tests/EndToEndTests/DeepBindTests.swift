// DeepBindTests.swift: libraries opened with RTLD_DEEPBIND are tracked (Examples/deepbind.c
// and deepbind_lib.c, heaptrack's test shape); dlmopen namespaces are reported as not tracked.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct DeepBind {
        static let bindings = ["now", "lazy"]

        @Test("RTLD_DEEPBIND: a library that frees its own strdup and malloc blocks reports nothing", arguments: bindings)
        func freesItsBlocks(binding: String) throws {
            let program = try E2E.example("deepbind")
            try withScratch { scratch in
                let run = try runTracked(program, ["free", binding], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "deepbind: free\n")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blocks.isEmpty, "\(dir.blockSizes)")
                #expect(dir.badFrees.isEmpty)
            }
        }

        @Test("RTLD_DEEPBIND: a library that leaks reports its two lines", arguments: bindings)
        func leaksItsBlocks(binding: String) throws {
            let program = try E2E.example("deepbind")
            let f = "deepbind_lib.c"
            try withScratch { scratch in
                let run = try runTracked(program, ["leak", binding], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [5, 10])
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location(f, "LEAK: strdup"): [5],
                    try location(f, "LEAK: malloc 10"): [10],
                ])
            }
        }

        @Test("RTLD_DEEPBIND by a bare name only the program's RUNPATH finds: still loads, left untracked with one warning")
        func foundThroughRunpath() throws {
            let program = try E2E.example("deepbind_runpath")
            try withScratch { scratch in
                let run = try runTracked(program, ["leak"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "deepbind: leak\n")
                #expect(run.stderrLines == ["memtrack: warning: a library opened with RTLD_DEEPBIND through its caller's RUNPATH, RPATH or $ORIGIN is not tracked"])
            }
        }

        @Test("dlmopen: a new namespace is reported once on stderr as not tracked")
        func namespaces() throws {
            let program = try E2E.example("deepbind")
            try withScratch { scratch in
                let run = try runTracked(program, ["namespace"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderrLines == ["memtrack: warning: dlmopen: a new link-map namespace has its own allocator, which is not tracked"])
                // The namespaces' strdup blocks are their own libc's: never seen, never reported.
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(!dir.blockSizes.contains(9), "\(dir.blockSizes)")
            }
        }
    }
}
