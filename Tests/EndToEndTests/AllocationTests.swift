// AllocationTests.swift: every allocation entry point, threads, C++, glibc helpers, dlopen,
// Swift. Each program marks its leaking lines (`LEAK: ...`); the expected lines come from there.

import Foundation
import Testing

/// Both modes: the default settle time, and synchronous.
let bothModes: [Int?] = [nil, 0]

/// Checks that memdir resolve attributes exactly `expected` (location -> sizes of the blocks
/// there) and nothing else, one leak group per block.
func expectResolved(_ report: ReportView, _ expected: [String: [Int]], allowOthers: Bool = false,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    for (loc, sizes) in expected {
        let groups = report.leaks(at: loc)
        let got = groups.flatMap { g in g.blocks == 1 ? [g.bytes] : [g.bytes / max(g.blocks, 1)] }.sorted()
        let blocks = groups.reduce(0) { $0 + $1.blocks }
        #expect(blocks == sizes.count && groups.reduce(0, { $0 + $1.bytes }) == sizes.reduce(0, +),
                "at \(loc): want sizes \(sizes.sorted()), got \(got) in \(groups.count) groups; all: \(report.leaks.map { "\($0.attributed ?? "nil") \($0.blocks)x\($0.bytes)" })",
                sourceLocation: sourceLocation)
    }
    if !allowOthers {
        let wanted = Set(expected.keys)
        let others = report.leaks.filter { g in !wanted.contains { loc in g.attributed.map { frame($0, isAt: loc) } ?? false } }
        #expect(others.isEmpty, "unexpected leak groups: \(others.map { "\($0.attributed ?? "nil") \($0.blocks) blocks \($0.bytes) bytes" })",
                sourceLocation: sourceLocation)
    }
}

extension EndToEnd {
    @Suite struct Allocation {
        @Test("alloc_kinds: one leak per entry point, exact sizes, the right `via`", arguments: bothModes)
        func allocKinds(settleMs: Int?) throws {
            let program = try E2E.example("alloc_kinds")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [77, 111, 123, 160, 171, 189, 201, 222, 5000])
                #expect(dir.badFrees.isEmpty)
                let via = Dictionary(dir.blocks.values.map { ($0.size ?? -1, $0.fields["via"] ?? "") }) { a, _ in a }
                #expect(via == [111: "calloc", 5000: "realloc", 222: "realloc", 77: "reallocarray",
                                123: "posix_memalign", 160: "aligned_alloc", 171: "memalign", 189: "valloc",
                                201: "pvalloc"])
                let alignment: [Int: Int] = [123: 64, 160: 32, 171: 256, 189: 4096, 201: 4096]
                for block in dir.blocks.values {
                    let address = try #require(block.address.flatMap(parseNumber))
                    let size = try #require(block.size, "\(block.fields)")
                    if let align = alignment[size] {
                        #expect(address % align == 0, "size \(size) at \(block.address ?? "") not \(align)-aligned")
                    }
                    #expect(dir.blocks["\(block.address ?? "").mem"] != nil, "file name is the address")
                }
                #expect(dir.state == "exit" && dir.status["code"] == "0")
            }
        }

        @Test("alloc_kinds: each leak resolves to its own line")
        func allocKindsResolve() throws {
            let program = try E2E.example("alloc_kinds")
            let f = "alloc_kinds.c"
            let expected: [String: [Int]] = [
                try location(f, "LEAK: calloc"): [111],
                try location(f, "LEAK: realloc-grow"): [5000],
                try location(f, "LEAK: realloc-null"): [222],
                try location(f, "LEAK: reallocarray"): [77],
                try location(f, "LEAK: posix_memalign"): [123],
                try location(f, "LEAK: aligned_alloc"): [160],
                try location(f, "LEAK: memalign"): [171],
                try location(f, "LEAK: valloc"): [189],
                try location(f, "LEAK: pvalloc"): [201],
            ]
            try withScratch { scratch in
                _ = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                expectResolved(try resolveReport(scratch.memDir), expected)
            }
        }

        @Test("threads: exactly one leak per thread, thread-specific sizes, no bad frees",
              arguments: ["threads", "threads_O2"], bothModes)
        func threads(program name: String, settleMs: Int?) throws {
            let program = try E2E.example(name)
            let leakLine = try location("threads.c", "LEAK: thread")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "threads: 4 leaks\n")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [1001, 1002, 1003, 1004])
                #expect(dir.badFrees.isEmpty)
                let threads = Set(dir.blocks.values.compactMap { $0.int("thread") })
                #expect(threads.count == 4, "each leak from its own thread")
                #expect(!threads.contains(dir.pid ?? -1), "not from the main thread")
                #expect(dir.counter("unrecorded-blocks") == 0 && dir.counter("unremoved-records") == 0)

                let report = try resolveReport(scratch.memDir)
                #expect(report.totalLeakedBlocks == 4 && report.totalLeakedBytes == 4010)
                #expect(report.leaks(at: leakLine).reduce(0) { $0 + $1.blocks } == 4,
                        "want all at \(leakLine): \(report.leaks.map { $0.attributed ?? "nil" })")
            }
        }

        @Test("C++: new, new[], vector and string leaks attributed to cxx_new.cpp, not operator new",
              arguments: ["cxx_new", "cxx_new_O2"])
        func cxx(program name: String) throws {
            let program = try E2E.example(name)
            let f = "cxx_new.cpp"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [24, 24, 32, 77, 101, 200])
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location(f, "LEAK: new 24"): [24],
                    try location(f, "LEAK: new[] 77"): [77],
                    try location(f, "LEAK: vector"): [24, 200],
                    try location(f, "LEAK: string"): [32, 101],
                ])
                for g in report.leaks {
                    #expect(g.attributed?.contains("operator new") == false, "\(g.attributed ?? "")")
                }
                // --by caller keeps the raw first frame: operator new's caller (the tracker wraps
                // operator new itself), which for the vector and the string is a library wrapper.
                let byCaller = try resolveReport(scratch.memDir, extra: ["--by", "caller"])
                #expect(byCaller.leaks(at: try location(f, "LEAK: new[] 77")).count == 1)
                #expect(byCaller.leaks.contains { $0.attributed?.contains("allocate") == true },
                        "\(byCaller.leaks.map { $0.attributed ?? "nil" })")
                #expect(!byCaller.leaks.contains { $0.attributed?.contains("operator new") == true },
                        "\(byCaller.leaks.map { $0.attributed ?? "nil" })")
            }
        }

        @Test("glibc helpers: strdup, asprintf, getline attributed to helpers.c",
              arguments: ["helpers", "helpers_O2"])
        func helpers(program name: String) throws {
            let program = try E2E.example(name)
            let f = "helpers.c"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0)
                #expect(run.stdoutText == runPlain(program).stdoutText)
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [13, 30, 120], "stdio and fmemopen buffers are not leaks")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location(f, "LEAK: strdup"): [13],
                    try location(f, "LEAK: asprintf"): [30],
                    try location(f, "LEAK: getline"): [120],
                ])
                for g in report.leaks {
                    let at = g.attributed ?? ""
                    #expect(!at.hasPrefix("strdup") && !at.contains("asprintf") && !at.contains("getline")
                            && !at.contains("getdelim"), "\(at)")
                }
            }
        }

        @Test("dlopen: the plugins' leaks resolve to plugin.c and plugin2.c after dlclose", arguments: bothModes)
        func dlopen(settleMs: Int?) throws {
            let program = try E2E.example("dlopen_leak")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [4321, 5432])
                #expect(dir.badFrees.isEmpty)
                // Both plugins are in the module map, with the seq of their loading.
                let modulesText = try String(contentsOf: dir.url.appendingPathComponent("modules"), encoding: .utf8)
                #expect(modulesText.contains("/plugin.so\n") && modulesText.contains("/plugin2.so\n"))

                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location("plugin.c", "LEAK: plugin"): [4321],
                    try location("plugin2.c", "LEAK: plugin2"): [5432],
                ])
            }
        }

        @Test("Swift retain cycle: both objects resolve to swift_cycle.swift")
        func swiftCycle() throws {
            let program = try E2E.example("swift_cycle")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "swift_cycle: 1 cycle\n")
                let dir = try onlyRunDirectory(scratch.memDir)
                // Parent: 16-byte header + 8 + 5*8; Child: 16 + 8 + 11*8. The runtime's own
                // caches stay live too, so other blocks are allowed here.
                #expect(dir.blockSizes.contains(64) && dir.blockSizes.contains(112), "\(dir.blockSizes)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location("swift_cycle.swift", "LEAK: Parent"): [64],
                    try location("swift_cycle.swift", "LEAK: Child"): [112],
                ], allowOthers: true)
            }
        }
    }
}

extension EndToEnd {
    @Suite struct ModuleMap {
        /// The caller of an allocation function is code in some loaded module: every block's and
        /// bad free's first frame must lie in a module line that applies to it (seq rule). Blocks
        /// allocated by library constructors, before main, included (so the initial module lines
        /// must not carry a seq above theirs).
        @Test("every first frame lies in a module", arguments: ["seeds", "cxx_new", "swift_cycle", "dlopen_leak", "forking"])
        func firstFramesInModules(program name: String) throws {
            let program = try E2E.example(name)
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, freeres: 0))
                #expect(run.exitedNormally)
                let report = try listReport(scratch.memDir)
                #expect(!report.leaks.isEmpty)
                for group in report.leaks + report.badFrees {
                    let first = (group.raw["stack"] as? [[String: Any]])?.first
                    #expect(first?["module"] is String,
                            "\(name): \(group.blocks) block(s), \(group.bytes) bytes: first frame \(first?["address"] ?? "none") has no module")
                }
            }
        }
    }
}
