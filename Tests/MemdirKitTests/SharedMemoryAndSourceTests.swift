// SharedMemoryAndSourceTests.swift: the shared-memory records and the `src=` field of blocks,
// against the record formats (the catalog's Record format); how a source location joins a stack's.

import Testing
@testable import MemdirKit

@Suite struct SharedMemoryAndSourceTests {
    @Test func mappingRecord() throws {
        let text = "memtrack/1 mapping address=0x7f98951d2000 size=4096 seq=3 thread=42 ms=1 via=shmat kind=sysv shared=1 id=7 stack=0x10,0x20\n"
        let m = try SharedMemory.parseMapping(text, path: "r/0x7f98951d2000.map")
        #expect(m == MappingRecord(address: 0x7f98951d2000, size: 4096, seq: 3, thread: 42, ms: 1, via: "shmat", kind: "sysv",
                                   shared: true, segmentID: 7, stack: [0x10, 0x20], file: "r/0x7f98951d2000.map"))
    }

    @Test func segmentRecords() throws {
        let sysv = try SharedMemory.parseSegment("memtrack/1 segment id=7 key=0x2a size=1024 seq=2 thread=42 ms=0 via=shmget stack=0x10\n", path: "shm-7.shm")
        #expect(sysv.kind == "sysv" && sysv.id == 7 && sysv.key == 42 && sysv.size == 1024 && sysv.stack == [0x10])
        let posix = try SharedMemory.parseSegment("memtrack/1 posix-segment seq=4 thread=42 ms=1 via=shm_open stack=0x10 name=/my seg\\tx\n", path: "posix-my%20seg%09x.shm")
        #expect(posix.kind == "posix" && posix.name == "/my seg\tx" && posix.id == nil && posix.seq == 4)
    }

    @Test func badSharedMemoryRecords() {
        #expect(throws: MemdirError.self) { try SharedMemory.parseMapping("memtrack/1 mapping address=0x1 size=1\n", path: "a.map") }
        #expect(throws: MemdirError.self) { try SharedMemory.parseSegment("memtrack/1 segment id=x key=0 size=1 seq=1 thread=1 ms=0 via=shmget stack=\n", path: "s.shm") }
        #expect(throws: MemdirError.self) { try SharedMemory.parseMapping("memtrack/2 mapping address=0x1\n", path: "a.map") }
        #expect(SharedMemory.isRecordName("0x10.map") && SharedMemory.isRecordName("shm-3.shm"))
        #expect(!SharedMemory.isRecordName(".0x10.map") && !SharedMemory.isRecordName("0x10.mem"))
    }

    @Test func blockSourceField() {
        let line = "memtrack/1 block address=0x1 size=1 seq=2 thread=3 ms=4 via=malloc stack=0x10 src=dir with space/a.c:12:main\n"
        var stack: [UInt64] = []
        let result = Array(line.utf8).withUnsafeBytes { BlockParser.parse($0, stack: &stack) }
        guard case .ok(let f) = result else { Issue.record("\(result)"); return }
        #expect(String(decoding: Array(line.utf8)[f.source], as: UTF8.self) == "dir with space/a.c:12:main")
        #expect(stack == [0x10])
    }

    @Test func sourceLocationJoinsTheStack() {
        let src = "x:y/a.c:12:main"
        #expect(NotedSource(src) == NotedSource(file: "x:y/a.c", line: 12, function: "main"))
        let bare = [Frame(address: 0x10, module: "/p", offset: 0x10)]
        let attributed = Attribution(frame: 0, symbol: 0)
        // No file and line in the stack: the source location stands in.
        #expect(NotedSource.combine(fromStack: "p+0x10", stack: bare, attributed: attributed, source: src) == "main x:y/a.c:12")
        var resolved = bare
        resolved[0].symbols = [Symbol(function: "main", file: "/src/x:y/a.c", line: 12)]
        #expect(NotedSource.combine(fromStack: "main /src/x:y/a.c:12", stack: resolved, attributed: attributed, source: src)
                == "main /src/x:y/a.c:12")
        resolved[0].symbols[0].line = 13
        #expect(NotedSource.combine(fromStack: "main /src/x:y/a.c:13", stack: resolved, attributed: attributed, source: src)
                == "main /src/x:y/a.c:13 (source: main x:y/a.c:12)")
        #expect(NotedSource.combine(fromStack: "p+0x10", stack: bare, attributed: attributed, source: nil) == "p+0x10")
    }
}
