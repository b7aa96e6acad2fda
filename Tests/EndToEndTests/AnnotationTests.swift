// AnnotationTests.swift: memtrack.h's source locations on a stripped -O2 binary, scoped tracing
// (pause/resume, MEM_TRACE_AFTER), memtrack_ignore, LSan's names through weak declarations, and
// programs built with the header running without the tracker.

import Foundation
import Testing

/// The `location` of every leak group in memdir's JSON report, sorted.
func leakLocations(_ memDir: URL, resolve: Bool = false) throws -> [String] {
    let result = try memdir([resolve ? "resolve" : "list", memDir.path, "--json", "--show-leak-kinds", "all"])
    let json = try parseJSON(result)
    let processes = try #require(json["processes"] as? [[String: Any]])
    return processes.flatMap { ($0["leaks"] as? [[String: Any]]) ?? [] }.compactMap { $0["location"] as? String }.sorted()
}

/// `function annotated.c:LINE` of a marker, as the header records it.
func annotatedAt(_ function: String, _ marker: String, file: String = "annotated.c") throws -> String {
    "\(function) \(file):\(try sourceLine(file, marker))"
}

extension EndToEnd {
    @Suite struct Annotations {
        @Test("a stripped -O2 binary built with memtrack.h: each leak at its own file:line, in list and resolve")
        func sourceLocations() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, ["located"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [11, 14, 17, 21])
                let expected = try [annotatedAt("located", "LOC-MALLOC"), annotatedAt("located", "LOC-CALLOC"),
                                    annotatedAt("located", "LOC-STRDUP"), annotatedAt("located", "LOC-REALLOC")].sorted()
                #expect(try leakLocations(scratch.memDir) == expected)
                #expect(try leakLocations(scratch.memDir, resolve: true) == expected)
            }
        }

        @Test("20,000 located blocks, most of them through the backlog: every one keeps its header location; the backlog's probes stay bounded")
        func locationsThroughTheBacklog() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, ["many"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0 && run.stderrText.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blocks.count == 20000)
                // The young table holds 6,144 blocks: the rest went through the backlog.
                let inserts = try #require(dir.counter("backlog-inserts"))
                #expect(inserts >= 20000 - 6144, "backlog-inserts \(inserts)")
                let longest = try #require(dir.counter("backlog-probe-max"))
                #expect(longest <= 1024)
                #expect((dir.counter("backlog-probe-steps") ?? -1) >= longest)
                let peak = try #require(dir.counter("backlog-peak")), slots = try #require(dir.counter("backlog-peak-slots"))
                #expect(peak > 0 && slots * 3 >= peak * 4, "backlog-peak \(peak) in \(slots) slots: at most 3/4 full")
                let json = try parseJSON(try memdir(["list", scratch.memDir.path, "--json"]))
                let leaks = try #require((json["processes"] as? [[String: Any]])?.first?["leaks"] as? [[String: Any]])
                let byLocation = Dictionary(leaks.map { (($0["location"] as? String) ?? "?", ($0["blocks"] as? NSNumber)?.intValue ?? 0) },
                                            uniquingKeysWith: +)
                #expect(byLocation == [try annotatedAt("many", "LOC-MANY-A"): 10000, try annotatedAt("many", "LOC-MANY-B"): 10000],
                        "\(byLocation)")
            }
        }

        @Test("with debug information the stack's location stands, and agrees with the header's")
        func sourceLocationsAgree() throws {
            let program = try E2E.example("annotated")
            try withScratch { scratch in
                _ = try runTracked(program, ["located"], Tracking(memDir: scratch.memDir))
                let locations = try leakLocations(scratch.memDir, resolve: true)
                #expect(locations.count == 4)
                for l in locations { #expect(!l.contains("(source:"), "\(l)") }
                #expect(locations.contains { frame($0, isAt: (try? location("annotated.c", "LOC-MALLOC")) ?? "?") })
            }
        }

        @Test("pause/resume nest per thread: only the block after the last resume is reported")
        func pauseResume() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, ["pause"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0 && run.stderrText.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [24])
                #expect(dir.badFrees.isEmpty)
                #expect(try leakLocations(scratch.memDir) == [try annotatedAt("paused", "RESUMED")])
            }
        }

        @Test("pausing is per thread: another thread's block is reported, the paused thread's is not")
        func pausePerThread() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, ["thread"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0 && run.stderrText.isEmpty, "\(run.stderrText)")
                #expect(try onlyRunDirectory(scratch.memDir).blockSizes == [82])
                #expect(try leakLocations(scratch.memDir) == [try annotatedAt("other_thread", "OTHER-THREAD")])
            }
        }

        @Test("memtrack_ignore: the ignored block is never reported, the other one is")
        func ignore() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, ["ignore"], Tracking(memDir: scratch.memDir, settleMs: 0))
                #expect(run.stdoutText == "ignore 0\nloaded 1\n")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [32])
                #expect(try leakLocations(scratch.memDir) == [try annotatedAt("ignored", "NOT-IGNORED")])
            }
        }

        @Test("memtrack_check: the number of lost blocks (0: the block is held in a global), and every pending record is on disk when it returns")
        func check() throws {
            let program = try E2E.example("annotated_stripped")
            try withScratch { scratch in
                // A settle time far longer than the run: only memtrack_check can have written the record.
                let run = try runTracked(program, ["check"], Tracking(memDir: scratch.memDir, settleMs: 600000))
                #expect(run.stdoutText == "check 0 recorded 1\nloaded 1\n")
                #expect(try onlyRunDirectory(scratch.memDir).blockSizes == [41])
            }
        }

        @Test("MEM_TRACE_AFTER: start-up leaks are not recorded, double frees still are")
        func traceAfter() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let run = try runTracked(seeds, [], Tracking(memDir: scratch.memDir), extraEnvironment: ["MEM_TRACE_AFTER": "3600"])
                #expect(run.exitedNormally && run.status == 0)
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blocks.isEmpty)
                #expect(dir.badFrees.count == 1)
                #expect(dir.badFrees.first?.value.kind == "double-free")
            }
        }

        @Test("LSan's names through weak declarations: disabled and ignored blocks are not reported")
        func lsanInterface() throws {
            let program = try E2E.example("lsan_annotated")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.stderrText)")
                #expect(run.stdoutText == "recoverable 0\npresent 1\n")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [53])
                let locations = try leakLocations(scratch.memDir, resolve: true)
                #expect(locations.count == 1)
                #expect(frame(locations[0], isAt: try location("lsan_annotated.c", "LSAN-PLAIN")), "\(locations)")
            }
        }

        @Test("C++: a stripped -O2 program built with memtrack.h, its leak at the .cpp line, the paused block left out")
        func cxx() throws {
            let program = try E2E.example("annotated_cxx_stripped")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.stdoutText == "loaded 1\n")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [61])
                #expect(try leakLocations(scratch.memDir) == [try annotatedAt("main", "CXX-MALLOC", file: "annotated_cxx.cpp")])
            }
        }

        @Test("Swift: memtrack.h imported, memtrack_loaded() and pause/resume work")
        func swift() throws {
            let program = try E2E.example("annotated_swift")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.stdoutText == "loaded 1 true\n")
                let dir = try onlyRunDirectory(scratch.memDir)
                // The Swift runtime's own start-up blocks are there too; ours are told by size.
                #expect(dir.blockSizes.contains(72))
                #expect(!dir.blockSizes.contains(71))
                let plain = runPlain(program)
                #expect(plain.stdoutText == "loaded 0 true\n")
            }
        }

        @Test("programs built with the header or LSan's weak names run unchanged without the tracker",
              arguments: [("annotated_stripped", ["located"], "loaded 0\n"), ("annotated_stripped", ["pause"], "loaded 0\n"),
                          ("annotated_stripped", ["thread"], "loaded 0\n"),
                          ("annotated_stripped", ["ignore"], "ignore -1\nloaded 0\n"),
                          ("annotated_stripped", ["check"], "check -1 recorded 0\nloaded 0\n"),
                          ("lsan_annotated", [], "recoverable -2\npresent 0\n"),
                          ("annotated_cxx_stripped", [], "loaded 0\n")])
        func withoutTracker(example: String, arguments: [String], output: String) throws {
            let run = runPlain(try E2E.example(example), arguments)
            #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
            #expect(run.stdoutText == output)
            #expect(run.stderrText.isEmpty)
        }
    }
}
