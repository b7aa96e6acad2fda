// InterposerUnitTests.swift: the interposer's inner parts tested on their own (issue 19 item 6):
// Examples/unit/interposer_unit.c is compiled with the interposer's own .c files of the layers
// up to the table (base.h lists the layers) and run. It checks the radix index and the live-set
// index, the locks (under contention, and a signal put aside while one is held), the unwinder
// (a known call chain, each frame inside the expected function), the table (insert, lookup,
// collisions, growth of the backlog, flush to records) and the bounded walks of the loader's list
// (loaderwalk.c), and prints `ok UNIT` for each.

import Foundation
import Testing

enum InterposerUnit {
    /// The files linked: the table and every layer below it, and loaderwalk.c (which needs
    /// nothing above the table); nothing else above.
    static let sources = ["state.c", "sys.c", "lock.c", "capabilities.c", "format.c", "names.c", "failure.c",
                          "radix.c", "shadow.c", "unwind.c", "files.c", "stacks.c", "sources.c", "records.c", "pending.c",
                          "loaderwalk.c"]
    static let units = ["radix", "shadow", "lock", "unwind", "table", "loaderwalk"]
}

extension EndToEnd {
    @Suite struct InterposerUnitTests {
        @Test("C unit tests of the index, the locks, the unwinder and the table pass, each unit reported")
        func unitProgram() throws {
            try withScratch { scratch in
                let source = InterposerStructure.sourceDirectory
                let program = scratch.root.appendingPathComponent("interposer_unit").path
                let arguments = ["-O2", "-g", "-D_GNU_SOURCE", "-I", source.path, "-I", source.appendingPathComponent("include").path,
                                 E2E.examplesSource.appendingPathComponent("unit/interposer_unit.c").path]
                    + InterposerUnit.sources.map { source.appendingPathComponent($0).path }
                    + ["-o", program, "-lpthread", "-ldl", "-rdynamic"]
                let build = runProgram("/usr/bin/gcc", arguments, environment: E2E.cleanEnvironment(), timeout: 300)
                try #require(build.exitedNormally && build.status == 0,
                             "the unit program does not build from the table's layers alone (\(build.statusDescription)):\n\(build.stderrText)")
                // The table writes some 47,000 records: on tmpfs when there is one (as MEM_DIR should be).
                let shm = URL(fileURLWithPath: "/dev/shm")
                let records = FileManager.default.isWritableFile(atPath: shm.path)
                    ? shm.appendingPathComponent("memdir-unit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
                    : scratch.root.appendingPathComponent("records")
                try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: records) }
                let run = runProgram(program, [records.path], environment: E2E.cleanEnvironment(), timeout: 240)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stdoutText)\(run.stderrText)")
                #expect(run.stdoutText.split(separator: "\n").map(String.init) == InterposerUnit.units.map { "ok \($0)" },
                        "\(run.stdoutText)")
            }
        }
    }
}
