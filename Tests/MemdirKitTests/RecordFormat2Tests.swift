// RecordFormat2Tests.swift: block records of format 2 (symlinks + the stacks file), read next to
// format 1 (regular files), which memdir must keep reading.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import MemdirKit

extension TempDir {
    func stacks(_ run: String, _ lines: String) { write("\(run)/stacks", "memtrack/2 stacks\n" + lines) }

    func link(_ run: String, address: UInt64, target: String) {
        let path = self.path + "/\(run)/0x\(String(address, radix: 16)).mem"
        precondition(symlink(target, path) == 0)
    }
}

@Suite struct RecordFormat2Tests {
    let libc: UInt64 = 0x7f0000002000

    func report(_ dir: String) throws -> Report {
        try ReportBuilder.build(directory: dir, options: ReportOptions(grouping: .frame, rules: WrapperRules()))
    }

    /// The same four blocks in format 1 and format 2.
    func writeBoth(_ t: TempDir) {
        let stacks: [[UInt64]] = [[libc + 0x10, 0x401100, 0x401500], [0x401300]]
        let blocks: [(address: UInt64, size: Int, seq: Int, stack: Int, via: String, letter: String)] = [
            (0x10, 10, 1, 0, "malloc", "m"), (0x20, 20, 2, 0, "calloc", "c"),
            (0x30, 30, 3, 1, "posix_memalign", "p"), (0x40, 5, 4, 1, "aligned_alloc", "A"),
        ]
        t.run("1")
        for b in blocks {
            let frames = stacks[b.stack].map { "0x" + String($0, radix: 16) }.joined(separator: ",")
            t.write("1/0x\(String(b.address, radix: 16)).mem",
                    "memtrack/1 block address=0x\(String(b.address, radix: 16)) size=\(b.size) seq=\(b.seq) thread=7 ms=3 via=\(b.via) stack=\(frames)\n")
        }
        t.leakCheck("1", seq: 5, lost: blocks.map { ($0.address, "definitely") })
        t.run("2")
        t.leakCheck("2", seq: 5, lost: blocks.map { ($0.address, "definitely") })
        t.stacks("2", stacks.enumerated().map { "\($0.offset + 1) " + $0.element.map { "0x" + String($0, radix: 16) }.joined(separator: ",") + "\n" }.joined())
        for b in blocks {
            t.link("2", address: b.address, target: "2 s=\(b.size) q=\(b.seq) t=7 m=3 v=\(b.letter) k=\(b.stack + 1)")
        }
    }

    @Test func format2ReadsLikeFormat1() throws {
        let t = TempDir(); defer { t.remove() }
        writeBoth(t)
        let v1 = try report(t.path + "/1"), v2 = try report(t.path + "/2")
        #expect(v1.processes[0].problems.isEmpty && v2.processes[0].problems.isEmpty)
        #expect(v2.processes[0].leakedBlocks == 4)
        #expect(v2.processes[0].leakedBytes == 65)
        func groups(_ r: Report) -> [String] {
            r.processes[0].leaks.map { "\($0.blocks) \($0.bytes) \($0.location) \($0.sample.via) \($0.sample.seq) \($0.sample.stack)" }
        }
        #expect(groups(v2) == groups(v1))
        #expect(groups(v2) == ["2 35 prog+0x1300 posix_memalign 3 [\(0x401300)]", "2 30 prog+0x1100 malloc 1 [\(libc + 0x10), \(0x401100), \(0x401500)]"])
    }

    @Test func readAllGivesEveryBlockOfBothFormats() throws {
        let t = TempDir(); defer { t.remove() }
        writeBoth(t)
        let v1 = try BlockRecordV2.readAll(runDirectory: t.path + "/1")
        let v2 = try BlockRecordV2.readAll(runDirectory: t.path + "/2")
        #expect(v2 == v1)
        #expect(v2["0x40.mem"] == BlockSample(address: 0x40, size: 5, seq: 4, thread: 7, ms: 3, via: "aligned_alloc", stack: [0x401300]))
    }

    @Test func tornLastStackLineIsIgnored() throws {
        let table = try StackTable.parse("memtrack/2 stacks\n1 0x10,0x20\n3 \n2 0x30,0x4", path: "s")
        #expect(table.stack(1) == [0x10, 0x20])
        #expect(table.stack(3) == [])
        #expect(table.stack(2) == nil, "cut short by a crash: no record can name it")
        #expect(table.stack(4) == nil)
    }

    @Test func badStacksFiles() {
        #expect(throws: MemdirError.unsupportedVersion(path: "s", version: "3")) { try StackTable.parse("memtrack/3 stacks\n", path: "s") }
        #expect(throws: MemdirError.malformedRecord(path: "s", reason: "bad stack id 'x'")) {
            try StackTable.parse("memtrack/2 stacks\nx 0x10\n", path: "s")
        }
        #expect(throws: MemdirError.malformedRecord(path: "s", reason: "bad frame '0xzz' in stack 1")) {
            try StackTable.parse("memtrack/2 stacks\n1 0x10,0xzz\n", path: "s")
        }
    }

    @Test func malformedSymlinkRecordsAreReported() throws {
        let t = TempDir(); defer { t.remove() }
        t.run("9")
        t.stacks("9", "1 0x401100\n")
        t.link("9", address: 0x10, target: "2 s=8 q=1 t=7 m=0 v=m k=1")
        t.link("9", address: 0x20, target: "2 s=8 q=2 t=7 m=0 v=m k=5")
        t.link("9", address: 0x30, target: "2 s=8 q=3 t=7 m=0 v=m")
        t.link("9", address: 0x40, target: "/etc/passwd")
        t.link("9", address: 0x50, target: "2 s=8 q=5 t=7 m=0 v=x k=1")
        t.leakCheck("9", seq: 6, lost: [(0x10, "definitely")])
        let r = try report(t.path)
        #expect(r.processes[0].leakedBlocks == 1)
        let dir = t.path + "/9"
        #expect(Set(r.processes[0].problems.map(\.description)) == [
            "malformed record \(dir)/0x20.mem: unknown stack id 5",
            "malformed record \(dir)/0x30.mem: missing field 'k'",
            "malformed record \(dir)/0x40.mem: symlink is not a memtrack record: '/etc/passwd'",
            "malformed record \(dir)/0x50.mem: unknown entry point 'v=x'",
        ])
        let c = Captured()
        #expect(MemdirCLI.main(["list", t.path], console: c.console) == 5)
    }

    @Test func familyAndSourceLocation() throws {
        let t = TempDir(); defer { t.remove() }
        t.run("9")
        t.stacks("9", "1 0x401100\n")
        t.write("9/sources", "4 dir/a\\tb.c\tmain\n5 torn.c\tf")
        t.link("9", address: 0x10, target: "2 s=8 q=1 t=7 m=0 v=n k=1 f=n l=4:17")
        t.link("9", address: 0x20, target: "2 s=9 q=2 t=7 m=0 v=N k=1 f=a l=5:3")
        t.link("9", address: 0x30, target: "2 s=9 q=3 t=7 m=0 v=m k=1 f=x")
        let blocks = try? BlockRecordV2.readAll(runDirectory: t.path + "/9")
        #expect(blocks == nil, "f=x is malformed")
        _ = unlink(t.path + "/9/0x30.mem")
        let read = try BlockRecordV2.readAll(runDirectory: t.path + "/9")
        #expect(read["0x10.mem"] == BlockSample(address: 0x10, size: 8, seq: 1, thread: 7, ms: 0, via: "new", stack: [0x401100],
                                                source: "dir/a\tb.c:17:main", family: "new"))
        #expect(read["0x20.mem"] == BlockSample(address: 0x20, size: 9, seq: 2, thread: 7, ms: 0, via: "new[]", stack: [0x401100],
                                                source: nil, family: "new[]"), "a torn sources line names nothing")
    }

    @Test func laterVersionExits6() throws {
        let t = TempDir(); defer { t.remove() }
        t.run("9")
        t.stacks("9", "1 0x401100\n")
        t.link("9", address: 0x10, target: "3 s=8 q=1 t=7 m=0 v=m k=1")
        let c = Captured()
        #expect(MemdirCLI.main(["list", t.path], console: c.console) == 6)
        #expect(c.err.contains("record format version 3 is not supported"))
    }
}
