// ScanAndGroupTests.swift: scanning real directories, module lookup and grouping.

import Testing
@testable import MemdirKit

@Suite struct ModuleMapTests {
    @Test func lookupUsesLargestSeqNotAboveTheBlocks() {
        let map = ModuleMap([
            ModuleLine(seq: 0, base: 0x1000, start: 0x1000, end: 0x2000, path: "/lib/old.so"),
            ModuleLine(seq: 311, base: 0x1000, start: 0x1000, end: 0x2000, path: "/tmp/plugin.so"),
            ModuleLine(seq: 0, base: 0x400000, start: 0x401000, end: 0x402000, path: "/bin/prog"),
        ])
        #expect(map.locate(0x1800, seq: 10)?.path == "/lib/old.so")
        #expect(map.locate(0x1800, seq: 311)?.path == "/tmp/plugin.so")
        #expect(map.locate(0x1800, seq: 5000)?.path == "/tmp/plugin.so")
        #expect(map.locate(0x401234, seq: 1) == ModuleLocation(moduleIndex: 2, path: "/bin/prog", offset: 0x1234))
        #expect(map.locate(0x402000, seq: 1) == nil)  // end is exclusive
        #expect(map.describe(0x401234, seq: 1) == "prog+0x1234")
        #expect(map.describe(0x999, seq: 1) == "0x999")
    }

    @Test func wrapperModulesAndGlobs() {
        let rules = WrapperRules(extraFunctions: ["my_alloc*", "exact"])
        #expect(rules.isWrapperModule(path: "/usr/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(rules.isWrapperModule(path: "/usr/lib/libstdc++.so.6.0.33"))
        #expect(rules.isWrapperModule(path: "/opt/swift/usr/lib/swift/linux/libswiftCore.so"))
        #expect(!rules.isWrapperModule(path: "/usr/lib/libcrypt.so.1"))
        #expect(rules.isWrapperFunction("operator new(unsigned long)"))
        #expect(rules.isWrapperFunction("operator new[](unsigned long)"))
        #expect(rules.isWrapperFunction("std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>(int&&)"))
        #expect(rules.isWrapperFunction("swift_allocObject"))
        #expect(rules.isWrapperFunction("strdup"))
        #expect(rules.isWrapperFunction("my_alloc_zeroed"))
        #expect(rules.isWrapperFunction("exact"))
        #expect(!rules.isWrapperFunction("exactly"))
        #expect(!rules.isWrapperFunction("main"))
        #expect(globMatch("a*b*c", "aXXbYYc") && !globMatch("a*b*c", "aXXbYY"))
    }
}

@Suite struct ScanTests {
    // Addresses: program 0x401000..0x402000 (base 0x400000), libc 0x7f0000001000.., libfoo 0x7f1000001000..
    let libc: UInt64 = 0x7f0000002000, libfoo: UInt64 = 0x7f1000002000

    func report(_ dir: String, _ mode: GroupingMode, wrappers: [String] = []) throws -> Report {
        try ReportBuilder.build(directory: dir, options: ReportOptions(grouping: mode, rules: WrapperRules(extraFunctions: wrappers)))
    }

    /// Five blocks in the current record format, or in format 1 (a directory written by an older
    /// tracker, which memdir still reads): the grouping tests run on both.
    func fixture(_ t: TempDir, format: RecordFormat = .v2) {
        t.run("4242")
        // Two blocks by strdup (libc) called from 0x401100, one from 0x401200 via strdup, all in main.
        t.block("4242", address: 0x10, size: 10, seq: 1, stack: [libc + 0x10, 0x401100, 0x401500], format: format)
        t.block("4242", address: 0x20, size: 20, seq: 2, stack: [libc + 0x10, 0x401100, 0x401500], format: format)
        t.block("4242", address: 0x30, size: 30, seq: 3, stack: [libc + 0x10, 0x401200, 0x401500], format: format)
        t.block("4242", address: 0x40, size: 5, seq: 4, stack: [libfoo + 0x20, 0x401300], format: format)
        // Everything a wrapper: attributed to the last frame.
        t.block("4242", address: 0x50, size: 1, seq: 5, stack: [libc + 0x10, libc + 0x99],
                extra: format == .v2 ? " u=1" : " unknown=1", format: format)  // unknown fields are ignored
        t.leakCheck("4242", seq: 5, lost: [(0x10, "definitely"), (0x20, "definitely"), (0x30, "definitely"), (0x40, "definitely"), (0x50, "definitely")])
    }

    @Test(arguments: RecordFormat.allCases) func groupByCaller(format: RecordFormat) throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t, format: format)
        let r = try report(t.path, .caller)
        let leaks = r.processes[0].leaks
        #expect(leaks.map { "\($0.blocks) \($0.bytes) \($0.location)" } == ["4 61 libc.so.6+0x2010", "1 5 libfoo.so.1+0x2020"])
        #expect(r.processes[0].leakedBlocks == 5 && r.processes[0].leakedBytes == 66)
    }

    @Test(arguments: RecordFormat.allCases) func groupByFrameSkipsWrapperModules(format: RecordFormat) throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t, format: format)
        let leaks = try report(t.path, .frame).processes[0].leaks
        #expect(leaks.map { "\($0.blocks) \($0.bytes) \($0.location)" }
                == ["2 30 prog+0x1100", "1 30 prog+0x1200", "1 5 libfoo.so.1+0x2020", "1 1 libc.so.6+0x2099"])
        #expect(leaks[0].sample.seq == 1)
        #expect(leaks[0].sample.address == 0x10)
        #expect(leaks[0].attributed == Attribution(frame: 1, symbol: 0))
    }

    @Test(arguments: RecordFormat.allCases) func groupByStack(format: RecordFormat) throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t, format: format)
        t.block("4242", address: 0x60, size: 100, seq: 6, stack: [libc + 0x10, 0x401100, 0x401600], format: format)
        t.leakCheck("4242", seq: 6, lost: [0x10, 0x20, 0x30, 0x40, 0x50, 0x60].map { ($0, "definitely") })
        let leaks = try report(t.path, .stack).processes[0].leaks
        #expect(leaks.map { "\($0.blocks) \($0.bytes) \($0.location)" }
                == ["1 100 prog+0x1100", "2 30 prog+0x1100", "1 30 prog+0x1200", "1 5 libfoo.so.1+0x2020", "1 1 libc.so.6+0x2099"])
    }

    @Test func singleRunDirectoryAndCleanRun() throws {
        let t = TempDir(); defer { t.remove() }
        let run = t.run("7")
        t.leakCheck("7", seq: 0, lost: [])   // a normal exit without one is an incomplete record
        let r = try report(run, .frame)
        #expect(r.processes.count == 1 && r.isClean)
        let c = Captured()
        #expect(MemdirCLI.main(["list", t.path], console: c.console) == 0)
        #expect(c.out.hasSuffix("no leaks, no bad frees in 1 process\n"))
        #expect(c.err == "")
    }

    @Test func runDirectoriesSortNumerically() throws {
        let t = TempDir(); defer { t.remove() }
        for name in ["4242.10", "4242.2", "4242", "99"] { t.run(name) }
        t.write("notes/readme.txt", "x")
        #expect(try Scanner.runDirectories(in: t.path).map { baseName($0) } == ["99", "4242", "4242.2", "4242.10"])
    }

    @Test func missingAndEmptyDirectories() {
        let t = TempDir(); defer { t.remove() }
        #expect(throws: MemdirError.noRecords(path: t.path)) { try Scanner.runDirectories(in: t.path) }
        #expect(throws: MemdirError.directoryUnreadable(path: t.path + "/nope", reason: "No such file or directory")) {
            try Scanner.runDirectories(in: t.path + "/nope")
        }
    }

    @Test func malformedRecordsAreReportedWithoutStoppingTheScan() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        t.write("4242/0x70.mem", "")
        t.write("4242/0x80.mem", "memtrack/1 block address=0x80 size=8 seq=9 thread=1 ms=1 via=malloc stack=0x4011")
        let r = try report(t.path, .frame)
        #expect(r.processes[0].leakedBlocks == 5)
        #expect(r.processCount == 1)
        let problems = Set(r.processes[0].problems.map(\.description))
        #expect(problems == ["malformed record \(t.path)/4242/0x70.mem: empty file",
                             "malformed record \(t.path)/4242/0x80.mem: truncated (no newline at end)"])
        #expect(r.firstProblem?.exitStatus == 5)
        let c = Captured()
        #expect(MemdirCLI.main(["list", t.path], console: c.console) == 5)
        #expect(c.out.contains("prog+0x1100"))
        #expect(c.err.contains("memdir: error: malformed record \(t.path)/4242/0x70.mem: empty file\n"))
    }

    @Test func unsupportedVersionExits6() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        t.write("4242/0x90.mem", "memtrack/3 block address=0x90\n")
        let c = Captured()
        #expect(MemdirCLI.main(["list", t.path], console: c.console) == 6)
        #expect(c.err.contains("record format version 3 is not supported"))
    }

    @Test func badFreesIncompleteAndRunning() throws {
        let t = TempDir(); defer { t.remove() }
        t.run("4242", status: "state running\nunrecorded-blocks 3\nunremoved-records 0\nunrecorded-events 1\nerror openat: No space left on device\n")
        t.write("4242/bad-9.free", "memtrack/1 double-free address=0x10 seq=9 thread=1 ms=1 via=free stack=0x401400 size=8 alloc-stack=\(libc + 1),0x401100\n")
        t.write("4242/bad-10.free", "memtrack/1 invalid-free address=0x20 seq=10 thread=1 ms=1 via=free stack=0x401410\n")
        let r = try report(t.path, .frame)
        let b = r.processes[0].badFrees
        #expect(b.map(\.record.seq) == [9, 10])
        #expect(b[0].location == "prog+0x1400")
        #expect(b[0].allocLocation == "prog+0x1100")
        #expect(b[0].freeLocation == nil)
        let text = TableFormatter().format(r)
        #expect(text.contains("    double-free of 0x10 (free, 8 bytes) at prog+0x1400\n      allocated at prog+0x1100\n"))
        #expect(text.contains("    invalid-free of 0x20 (free) at prog+0x1410\n"))
        #expect(text.contains("  warning: record incomplete: 3 live blocks not recorded, 0 freed blocks not removed (may show as leaks), 1 bad free or other record not recorded: openat: No space left on device\n"))
        #expect(text.contains("  note: state running:"))
        #expect(text.hasSuffix("total: 0 lost blocks, 0 bytes; 2 bad frees in 1 process\n"))
    }

    @Test(arguments: RecordFormat.allCases) func jsonSchema(format: RecordFormat) throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t, format: format)
        let json = JSONFormatter().format(try report(t.path, .frame))
        #expect(json.hasPrefix("{\n  \"schema\": \"memdir-report/2\",\n"))
        #expect(json.contains("\"leaked_blocks\": 5"))
        #expect(json.contains("\"location\": \"prog+0x1100\""))
        #expect(json.contains("\"module\": \"/home/me/prog\""))
    }
}

extension Report { var processCount: Int { processes.count } }
