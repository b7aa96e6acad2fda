// Support.swift: temporary directories and record writers shared by the MemdirKit tests.
//
// The fast tier (these unit tests and one end-to-end smoke test, Tests/EndToEndTests/SmokeTests.swift):
//     swift test --filter 'MemdirKitTests|EndToEnd/Smoke'
// The whole suite: swift test.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
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

    /// A live block's record in run `run`, in the format the tracker writes today (record format
    /// 2, records.c): a symlink `0xADDRESS.mem` whose target holds the fields, its stack a line
    /// of the run's `stacks` file (one line per distinct stack, ids from 1, as stacks.c dedups).
    /// `format: .v1` writes the old regular file instead, for the reader of old directories.
    /// `extra` is appended to the fields as they are (` u=1` in format 2, ` unknown=1` in format 1).
    func block(_ run: String, address: UInt64, size: Int, seq: Int, stack: [UInt64], via: String = "malloc",
               extra: String = "", format: RecordFormat = .v2) {
        let name = "\(run)/0x\(String(address, radix: 16)).mem"
        let frames = stack.map { "0x" + String($0, radix: 16) }.joined(separator: ",")
        switch format {
        case .v1:
            write(name, "memtrack/1 block address=0x\(String(address, radix: 16)) size=\(size) seq=\(seq) thread=4242 ms=3 via=\(via) stack=\(frames)\(extra)\n")
        case .v2:
            let letter = BlockRecordV2.viaNames.first { $0.value == via }.map { Character(UnicodeScalar($0.key)) }
            precondition(letter != nil, "no format 2 letter for \(via)")
            let id = stackID(run, frames)
            let full = path + "/" + name
            unlink(full)
            precondition(symlink("2 s=\(size) q=\(seq) t=4242 m=3 v=\(letter!) k=\(id)\(extra)", full) == 0)
        }
    }

    /// The id of `frames` in run `run`'s `stacks` file, appending a line when the stack is new.
    func stackID(_ run: String, _ frames: String) -> Int {
        let file = path + "/\(run)/stacks"
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? "memtrack/2 stacks\n"
        let lines = text.split(separator: "\n").dropFirst()
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 && parts[1] == frames, let id = Int(parts[0]) { return id }
        }
        let id = (lines.compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }.max() ?? 0) + 1
        write("\(run)/stacks", text + "\(id) \(frames)\n")
        return id
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

/// The on-disk block record formats: `.v2` is what the tracker writes today; `.v1` is kept for
/// the reader of directories written by older trackers.
enum RecordFormat: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case v1, v2
    var testDescription: String { "record format \(rawValue.dropFirst())" }
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
