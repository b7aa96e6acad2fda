// FormatUnitTests.swift: the pieces under the other-tool formats: protobuf varints, gzip's
// stored blocks and CRC-32 (a multi-block file read back by the system's gzip), XML escaping,
// SARIF paths, --xml-file patterns.

import Foundation
import Testing
@testable import MemdirKit

@Suite struct FormatUnitTests {
    @Test("protobuf: varints, zero fields left out, length-delimited and packed fields")
    func protobuf() {
        var w = ProtobufWriter()
        w.varint(1); w.varint(300); w.varint(UInt64.max)
        #expect(w.bytes == [0x01, 0xAC, 0x02] + Array(repeating: 0xFF, count: 9) + [0x01])
        var f = ProtobufWriter()
        f.uint(1, 0)                 // default: not written
        f.uint(1, 150)               // the protobuf guide's example: 08 96 01
        f.string(2, "testing")       // 12 07 74 65 73 74 69 6e 67
        f.packed(4, [3, 270, 86942]) // 22 06 03 8E 02 9E A7 05
        #expect(f.bytes == [0x08, 0x96, 0x01, 0x12, 0x07] + Array("testing".utf8) + [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
        var negative = ProtobufWriter()
        negative.int(1, -1)          // int64 -1: ten bytes
        #expect(negative.bytes.count == 11)
    }

    @Test("gzip: CRC-32 check value, and 200,000 bytes in four stored blocks read back by gzip -dc")
    func gzip() throws {
        #expect(Gzip.crc32(Array("123456789".utf8)) == 0xCBF43926)
        #expect(Gzip.crc32([]) == 0)
        var data = [UInt8](repeating: 0, count: 200_000)
        var x: UInt32 = 12345
        for i in data.indices { x = x &* 1103515245 &+ 12345; data[i] = UInt8(truncatingIfNeeded: x >> 16) }
        for input in [data, [], [0x41]] {
            let zipped = Gzip.stored(input)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memdir-gzip-\(getpid())-\(input.count)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("x.gz")
            try Data(zipped).write(to: file)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["gzip", "-dc", file.path]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let back = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            #expect(Array(back) == input)
        }
    }

    @Test("XML: text is escaped, characters XML 1.0 forbids become '?', numbers get valgrind's commas")
    func xml() {
        #expect(XMLWriter.escape("a<b>&\"c\u{1}d\te") == "a&lt;b&gt;&amp;&quot;c?d\te")
        #expect(ValgrindXMLFormatter.grouped(0) == "0")
        #expect(ValgrindXMLFormatter.grouped(1104) == "1,104")
        #expect(ValgrindXMLFormatter.grouped(1234567) == "1,234,567")
        #expect(ValgrindXMLFormatter.kind(ofBadFree: "double-free") == "InvalidFree")
        #expect(ValgrindXMLFormatter.kind(ofBadFree: "mismatched-free") == "MismatchedFree")
        #expect(ValgrindXMLFormatter.kind(ofLeak: .notClassified) == nil)
    }

    @Test("--xml-file patterns: %p, %q{VAR}, %%; anything else is a usage error")
    func patterns() throws {
        #expect(try FormatFlags.expand("out-%p.xml", pid: "42") == "out-42.xml")
        #expect(try FormatFlags.expand("100%%-%p", pid: "7") == "100%-7")
        setenv("MEMDIR_TEST_JOB", "ci 3", 1)
        #expect(try FormatFlags.expand("%q{MEMDIR_TEST_JOB}.xml", pid: "1") == "ci 3.xml")
        for bad in ["x-%z.xml", "x-%", "x-%q.xml", "x-%q{UNCLOSED"] {
            #expect(throws: MemdirError.self) { try FormatFlags.expand(bad, pid: "1") }
        }
    }

    @Test("SARIF: paths under the source root are relative to SRCROOT, others are percent-encoded file URIs")
    func sarifPaths() {
        let f = SARIFFormatter(sourceRoot: "/src/proj/")
        #expect(f.artifact("/src/proj/lib/a b.c") == .object([("uri", .string("lib/a%20b.c")), ("uriBaseId", .string("SRCROOT"))]))
        #expect(f.artifact("/usr/include/stdio.h") == .object([("uri", .string("file:///usr/include/stdio.h"))]))
        #expect(f.artifact("/src/projector/x.c") == .object([("uri", .string("file:///src/projector/x.c"))]))
        #expect(SARIFFormatter.fileURI("/src/proj", directory: true) == "file:///src/proj/")
    }
}
