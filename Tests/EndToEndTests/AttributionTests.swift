// AttributionTests.swift: blocks the loader allocates land on the program's own call; frames
// without a real symbol or line are shown as module+0xOFFSET rather than wrongly named.

import Foundation
import MemdirKit
import Testing

extension EndToEnd {
    @Suite struct Attribution {
        @Test("loader_noise: the loader's blocks for a thread and a dlopen land on the pthread_create and dlopen lines")
        func loaderBlocks() throws {
            let program = try E2E.example("loader_noise")
            let f = "loader_noise.c"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                let thread = try location(f, "LOADER: thread"), dlopen = try location(f, "LOADER: dlopen")
                #expect(!report.leaks(at: thread).isEmpty, "\(report.leaks.map { $0.attributed ?? "nil" })")
                #expect(!report.leaks(at: dlopen).isEmpty, "\(report.leaks.map { $0.attributed ?? "nil" })")
                let elsewhere = report.leaks.filter { g in ![thread, dlopen].contains { loc in g.attributed.map { frame($0, isAt: loc) } ?? false } }
                #expect(elsewhere.isEmpty, "\(elsewhere.map { "\($0.attributed ?? "nil") \($0.bytes)" })")
            }
        }

        @Test("stripped binary: a static function is module+0xOFFSET, not its exported neighbour; exported ones keep their names")
        func strippedBinary() throws {
            let program = try E2E.example("stripped")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                let report = try resolveReport(scratch.memDir)
                #expect(report.leaks.count == 2)
                let hidden = try #require(report.leaks.first { $0.bytes == 47 })
                #expect(hidden.frames.first?.hasPrefix("stripped+0x") == true, "\(hidden.frames)")
                #expect(hidden.frames.count > 1 && hidden.frames[1].hasPrefix("main (stripped+0x"), "\(hidden.frames)")
                let helper = try #require(report.leaks.first { $0.bytes == 31 })
                #expect(helper.frames.first?.hasPrefix("exported_helper (stripped+0x") == true, "\(helper.frames)")
            }
        }

        static let swiftDemangle = "/opt/swift/usr/bin/swift-demangle"

        @Test("libswiftCore frames: no file without a line, and every name is covered by its symbol",
              .enabled(if: FileManager.default.isExecutableFile(atPath: swiftDemangle), "no Swift toolchain at /opt/swift"))
        func swiftCoreFrames() throws {
            try withScratch { scratch in
                let run = try runTracked(Self.swiftDemangle, ["$sSi"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                let report = try resolveReport(scratch.memDir)
                var coreFrames = 0, named = 0
                for group in report.leaks {
                    for f in (group.raw["stack"] as? [[String: Any]]) ?? [] {
                        guard let module = f["module"] as? String, module.hasSuffix("libswiftCore.so") else { continue }
                        coreFrames += 1
                        let table = try #require(SymbolTable.read(path: module))
                        let offset = try #require(parseNumber((f["offset"] as? String) ?? ""))
                        for s in (f["symbols"] as? [[String: Any]]) ?? [] {
                            if s["function"] is String {
                                named += 1
                                #expect(table.contains(UInt64(offset - 1)), "\(s) at \(f["location"] ?? "")")
                            }
                            let hasFile = s["file"] is String, hasLine = s["line"] is NSNumber
                            #expect(hasFile == hasLine, "a file without a line: \(s)")
                        }
                    }
                }
                #expect(coreFrames > 0 && named > 0, "swift-demangle's leaks have no named libswiftCore frames to check")
            }
        }
    }
}
