// Support.swift: temporary directories and record writers shared by the MemdirKit tests.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
@testable import MemdirKit

/// A fresh directory under the temp dir; `remove()` deletes it (call in defer).
struct TempDir {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "memdirkit-test-XXXXXX").utf8CString)
        precondition(mkdtemp(&template) != nil)
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ relative: String, _ text: String) -> String {
        let full = path + "/" + relative
        let dir = (full as NSString).deletingLastPathComponent
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: full, contents: Data(text.utf8))
        return full
    }

    /// A complete run directory `name` with process/modules/status; returns its path.
    @discardableResult
    func run(_ name: String, pid: Int = 4242, exe: String = "/home/me/prog", modules: String? = nil,
             status: String = "state exit\ncode 0\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n") -> String {
        write("\(name)/process", "memtrack/1 process\npid \(pid)\nppid 1\nexe \(exe)\narg \(exe)\nstart-unix-ms 1\nsettle-ms 50\ndepth 12\n")
        write("\(name)/modules", "memtrack/1 modules\n" + (modules ?? """
            module seq=0 base=0x400000 start=0x401000 end=0x402000 path=\(exe)
            module seq=0 base=0x7f0000000000 start=0x7f0000001000 end=0x7f0000100000 path=/usr/lib/x86_64-linux-gnu/libc.so.6
            module seq=0 base=0x7f1000000000 start=0x7f1000001000 end=0x7f1000100000 path=/usr/lib/libfoo.so.1

            """))
        write("\(name)/status", "memtrack/1 status\n" + status)
        return path + "/" + name
    }

    func block(_ run: String, address: UInt64, size: Int, seq: Int, stack: [UInt64], extra: String = "") {
        let s = stack.map { "0x" + String($0, radix: 16) }.joined(separator: ",")
        write("\(run)/0x\(String(address, radix: 16)).mem",
              "memtrack/1 block address=0x\(String(address, radix: 16)) size=\(size) seq=\(seq) thread=4242 ms=3 via=malloc stack=\(s)\(extra)\n")
    }
}

extension TempDir {
    /// A complete `leak-check` record in run `run`: check at `seq`, `lost` as (address, kind word).
    func leakCheck(_ run: String, seq: Int, lost: [(UInt64, String)], notes: [String] = [], result: String = "complete", end: Bool = true) {
        var text = "memtrack/1 leak-check\nresult \(result)\nwhen exit\nseq \(seq)\nms 7\nduration-us 120\nthreads 1\nthreads-scanned 1\nblocks \(lost.count)\n"
        for n in notes { text += "note \(n)\n" }
        for (address, kind) in lost { text += "lost 0x\(String(address, radix: 16)) \(kind)\n" }
        if end { text += "end\n" }
        write("\(run)/leak-check", text)
    }
}

/// Captures what a command prints.
final class Captured: @unchecked Sendable {
    var out = "", err = ""
    var console: Console { Console(out: { self.out += $0 }, err: { self.err += $0 }) }
}

/// Runs a tool, returning its stdout; nil on failure.
func shell(_ argv: [String]) -> String? {
    guard let found = findExecutable(argv[0]), let r = try? runSubprocess([found.path] + argv.dropFirst()), r.status == 0 else { return nil }
    return String(decoding: r.stdout, as: UTF8.self)
}
