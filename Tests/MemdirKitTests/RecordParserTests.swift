// RecordParserTests.swift: the parse stage against the record format, version 1 (the catalog's Record format).

import Testing
@testable import MemdirKit

@Suite struct RecordParserTests {
    func parseBlock(_ text: String) -> (BlockParseResult, [UInt64]) {
        var stack: [UInt64] = []
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { BlockParser.parse($0, stack: &stack) }
        return (result, stack)
    }

    @Test func validBlock() {
        let line = "memtrack/1 block address=0x55d0c0a2b2a0 size=40 seq=17 thread=4242 ms=12 via=calloc stack=0x55d0c0a011e9,0x7f5c7a029d90\n"
        let (result, stack) = parseBlock(line)
        guard case .ok(let f) = result else { Issue.record("\(result)"); return }
        #expect(f.address == 0x55d0c0a2b2a0)
        #expect(f.size == 40)
        #expect(f.seq == 17)
        #expect(f.thread == 4242)
        #expect(f.ms == 12)
        #expect(Array(line.utf8)[f.via].elementsEqual("calloc".utf8))
        #expect(stack == [0x55d0c0a011e9, 0x7f5c7a029d90])
    }

    @Test func unknownKeysAreIgnoredAndOrderIsFree() {
        let (result, stack) = parseBlock("memtrack/1 block stack=0x10 future=x,y address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc\n")
        guard case .ok(let f) = result else { Issue.record("\(result)"); return }
        #expect(f.address == 1 && f.seq == 2)
        #expect(stack == [0x10])
    }

    @Test func malformedBlocks() {
        let full = "address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc stack=0x10"
        #expect(parseBlock("").0 == .malformed("empty file"))
        #expect(parseBlock("memtrack/1 block \(full)").0 == .malformed("truncated (no newline at end)"))
        #expect(parseBlock("memtrack/1 block address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc\n").0 == .malformed("missing field 'stack'"))
        #expect(parseBlock("memtrack/1 block address=0x1 size=zz seq=2 thread=3 ms=4 via=malloc stack=0x10\n").0
                == .malformed("bad value 'zz' for 'size'"))
        #expect(parseBlock("memtrack/1 block address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc stack=0x10,0xg\n").0
                == .malformed("bad value '0x10,0xg' for 'stack'"))
        #expect(parseBlock("memtrack/1 block address=0x1 size=1 junk seq=2\n").0 == .malformed("bad field 'junk'"))
        #expect(parseBlock("memtrack/1 status \(full)\n").0 == .malformed("expected a block record, found 'status'"))
        #expect(parseBlock("hello\n").0 == .malformed("missing memtrack header"))
        #expect(parseBlock("memtrack/2 block \(full)\n").0 == .unsupportedVersion("2"))
        #expect(parseBlock("memtrack/1 block address=0x1 size=99999999999999999999 seq=2 thread=3 ms=4 via=malloc stack=\n").0
                == .malformed("bad value '99999999999999999999' for 'size'"))
    }

    @Test func emptyStackIsAccepted() {
        let (result, stack) = parseBlock("memtrack/1 block address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc stack=\n")
        guard case .ok = result else { Issue.record("\(result)"); return }
        #expect(stack.isEmpty)
    }

    @Test func processRecord() throws {
        let p = try RecordParser.parseProcess("""
            memtrack/1 process
            pid 4242
            ppid 4100
            parent 4100.2
            exe /home/me/my\\\\prog\\tx
            arg ./myprog
            arg --name=a\\nb\\x01
            colour blue
            start-unix-ms 1764073442123
            settle-ms 50
            depth 12

            """, path: "process")
        #expect(p.pid == 4242)
        #expect(p.ppid == 4100)
        #expect(p.parent == "4100.2")
        #expect(p.exe == "/home/me/my\\prog\tx")
        #expect(p.args == ["./myprog", "--name=a\nb\u{01}"])
        #expect(p.startUnixMs == 1764073442123)
        #expect(p.settleMs == 50)
        #expect(p.depth == 12)
    }

    @Test func processErrors() {
        #expect(throws: MemdirError.malformedRecord(path: "p", reason: "missing field 'exe'")) {
            try RecordParser.parseProcess("memtrack/1 process\npid 1\n", path: "p")
        }
        #expect(throws: MemdirError.malformedRecord(path: "p", reason: "bad number 'x' for 'pid'")) {
            try RecordParser.parseProcess("memtrack/1 process\npid x\nexe /a\n", path: "p")
        }
        #expect(throws: MemdirError.malformedRecord(path: "p", reason: "empty file")) {
            try RecordParser.parseProcess("", path: "p")
        }
        #expect(throws: MemdirError.unsupportedVersion(path: "p", version: "7")) {
            try RecordParser.parseProcess("memtrack/7 process\npid 1\nexe /a\n", path: "p")
        }
        #expect(throws: MemdirError.malformedRecord(path: "p", reason: "truncated (no newline at end)")) {
            try RecordParser.parseProcess("memtrack/1 process\npid 1\nexe /a", path: "p")
        }
    }

    @Test func statusRecord() throws {
        let s = try RecordParser.parseStatus("""
            memtrack/1 status
            state signal
            signal 11
            signal-name SIGSEGV
            unrecorded-blocks 2
            unremoved-records 1
            unrecorded-events 0
            error openat: No space left on device

            """, path: "status")
        #expect(s.state == "signal")
        #expect(s.signal == 11)
        #expect(s.summary == "signal 11 SIGSEGV")
        #expect(s.unrecordedBlocks == 2 && s.unremovedRecords == 1 && s.unrecordedEvents == 0)
        #expect(!s.isComplete)
        #expect(s.error == "openat: No space left on device")
        #expect(throws: MemdirError.malformedRecord(path: "s", reason: "missing field 'state'")) {
            try RecordParser.parseStatus("memtrack/1 status\ncode 0\n", path: "s")
        }
    }

    @Test func modulesRecord() throws {
        let m = try RecordParser.parseModules("""
            memtrack/1 modules
            module seq=0 base=0x55d0c0a00000 start=0x55d0c0a01000 end=0x55d0c0a02000 path=/home/me/my prog
            module seq=311 base=0x7f5c79e00000 start=0x7f5c79e01000 end=0x7f5c79e02000 new=1 path=/tmp/plugin.so

            """, path: "modules")
        #expect(m == [
            ModuleLine(seq: 0, base: 0x55d0c0a00000, start: 0x55d0c0a01000, end: 0x55d0c0a02000, path: "/home/me/my prog"),
            ModuleLine(seq: 311, base: 0x7f5c79e00000, start: 0x7f5c79e01000, end: 0x7f5c79e02000, path: "/tmp/plugin.so"),
        ])
        #expect(throws: MemdirError.malformedRecord(path: "m", reason: "missing field 'path'")) {
            try RecordParser.parseModules("memtrack/1 modules\nmodule seq=0 base=0 start=1 end=2\n", path: "m")
        }
    }

    @Test func badFreeRecords() throws {
        let d = try RecordParser.parseBadFree(
            "memtrack/1 double-free address=0x10 seq=23 thread=7 ms=14 via=free stack=0x1,0x2 size=40 alloc-stack=0x3 free-stack=0x4,0x5\n",
            path: "bad-23.free")
        #expect(d == BadFreeRecord(kind: "double-free", address: 0x10, seq: 23, thread: 7, ms: 14, via: "free", stack: [1, 2],
                                   size: 40, allocStack: [3], freeStack: [4, 5], file: "bad-23.free"))
        let i = try RecordParser.parseBadFree("memtrack/1 invalid-free address=0x7ffd1c2a0b10 seq=24 thread=7 ms=14 via=realloc stack=0x9\n", path: "f")
        #expect(i.kind == "invalid-free")
        #expect(i.via == "realloc")
        #expect(i.size == nil && i.allocStack == nil && i.freeStack == nil)
        #expect(throws: MemdirError.malformedRecord(path: "f", reason: "missing field 'stack'")) {
            try RecordParser.parseBadFree("memtrack/1 double-free address=0x10 seq=23 thread=7 ms=14 via=free\n", path: "f")
        }
        #expect(throws: MemdirError.malformedRecord(path: "f", reason: "expected a double-free record, found 'block'")) {
            try RecordParser.parseBadFree("memtrack/1 block address=0x10\n", path: "f")
        }
    }

    @Test func mismatchRecords() throws {
        let m = try RecordParser.parseBadFree(
            "memtrack/1 mismatched-size address=0x20 seq=27 thread=7 ms=15 via=delete stack=0x1 size=64 alloc-stack=0x2 family=new freed-size=8\n",
            path: "bad-27.free")
        #expect(m == BadFreeRecord(kind: "mismatched-size", address: 0x20, seq: 27, thread: 7, ms: 15, via: "delete", stack: [1],
                                   size: 64, allocStack: [2], freeStack: nil, family: "new", freedSize: 8, file: "bad-27.free"))
        let f = try RecordParser.parseBadFree("memtrack/1 mismatched-free address=0x30 seq=9 thread=7 ms=1 via=free stack=0x1 family=new[]\n", path: "f")
        #expect(f.kind == "mismatched-free" && f.family == "new[]" && f.freedSize == nil && f.size == nil)
        let d = try RecordParser.parseBadFree("memtrack/1 double-free address=0x10 seq=23 thread=7 ms=14 via=delete[] stack=0x1\n", path: "f")
        #expect(d.family == nil && d.via == "delete[]")
    }

    @Test func unescape() {
        #expect(unescapeValue("a\\\\b\\nc\\td\\x7f") == "a\\b\nc\td\u{7f}")
    }
}
