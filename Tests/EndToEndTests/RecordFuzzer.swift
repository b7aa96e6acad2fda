// RecordFuzzer.swift: a mutation fuzzer over every file kind memdir reads. It starts from real
// records (written by libmemtrack.so on Examples/ programs, and by memdir snapshot / watch),
// mutates one file of one kind per iteration (bytes, numbers, lines, and the file itself: FIFO,
// symlink, directory, sparse multi-GiB file) and runs MemdirKit's readers and renderers on it in
// this process. A crash ends the test process (the input is kept in `lastInput`); an iteration
// that takes longer than `hangSeconds` aborts it with the kind and iteration; the growth of the
// peak RSS bounds what any read allocated.
//
// Deterministic: the same seed and iteration count replay the same inputs
// (MEMDIR_FUZZ_SEED, MEMDIR_FUZZ_ITERATIONS; see the catalog's Development, "Fuzzing the readers").

import Foundation
import MemdirKit

#if canImport(Glibc)
import Glibc
#endif

/// SplitMix64: small, fast, reproducible.
struct FuzzRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// One kind of file: where its seed lives, which file to mutate, and what reads it.
struct FuzzKind {
    var name: String
    /// The run directory (or the directory holding the file) the iteration works in.
    var directory: URL
    /// The file names of this kind in `directory` (one is mutated per iteration).
    var files: [String]
    /// Binary (counters) or text.
    var binary = false
    /// Version 2 block records are symlinks: their target is the text mutated.
    var symlink = false
    /// Runs the readers on `directory` after the mutation.
    var read: (URL) -> Void
}

struct FuzzFigures {
    var kind: String
    var iterations: Int
    var seconds: Double
    var slowestSeconds: Double
    var maxRSSMiB: Double
}

enum RecordFuzzer {
    static let hangSeconds = ProcessInfo.processInfo.environment["MEMDIR_FUZZ_HANG_SECONDS"].flatMap { Double($0) } ?? 20.0
    /// Where the input of the running iteration is copied, so a crash leaves it behind.
    static let lastInput = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("memdir-fuzz-last")

    // ---- Mutations ---------------------------------------------------------------------------

    static let interestingBytes: [UInt8] = [0, 0x0a, 0x20, 0x3d, 0x2c, 0x3a, 0x3b, 0x09, 0x5c, 0x1b, 0x07, 0x0d, 0x7f, 0x9b, 0xff,
                                            0x30, 0x39, 0x78, 0x2d, 0x22, 0x7b, 0x5b]
    static let extremeNumbers = ["0", "1", "-1", "18446744073709551615", "18446744073709551616", "9223372036854775807",
                                 "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                                 "99999999999999999999999999", "0xffffffffffffffff", "0x10000000000000000", "0x", "4294967296",
                                 "268435455", "268435456", "1e308", "2147483648"]

    static func mutateText(_ input: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + r.below(4)) {
            switch r.below(11) {
            case 0 where !b.isEmpty:   // flip a bit
                let i = r.below(b.count); b[i] ^= UInt8(1) << UInt8(r.below(8))
            case 1 where !b.isEmpty:   // an interesting byte
                b[r.below(b.count)] = r.pick(interestingBytes)
            case 2:   // a run of digits (or hex digits) becomes an extreme number
                let runs = numberRuns(b)
                if let run = runs.isEmpty ? nil : r.pick(runs) { b.replaceSubrange(run, with: Array(r.pick(extremeNumbers).utf8)) }
            case 3 where !b.isEmpty:   // delete a range
                let i = r.below(b.count); b.removeSubrange(i..<min(b.count, i + 1 + r.below(64)))
            case 4 where !b.isEmpty:   // duplicate a range
                let i = r.below(b.count), n = min(b.count - i, 1 + r.below(200))
                b.insert(contentsOf: Array(b[i..<(i + n)]), at: r.below(b.count))
            case 5:   // random bytes
                b.insert(contentsOf: (0..<(1 + r.below(16))).map { _ in UInt8(truncatingIfNeeded: r.next()) }, at: r.below(b.count + 1))
            case 6 where !b.isEmpty:   // truncate
                b.removeSubrange(r.below(b.count)...)
            case 7:   // one long line
                let fill = r.pick([UInt8(ascii: "A"), UInt8(ascii: "9"), UInt8(ascii: ","), 0, UInt8(ascii: "[")])
                b.insert(contentsOf: [UInt8](repeating: fill, count: r.pick([300, 5000, 70_000, 300_000])), at: r.below(b.count + 1))
            case 8:   // a line repeated many times
                let lines = b.split(separator: 10, omittingEmptySubsequences: false)
                if let line = lines.isEmpty ? nil : r.pick(lines) {
                    let times = min(r.pick([2, 100, 5000]), 2_000_000 / (line.count + 1))
                    var more: [UInt8] = []
                    for _ in 0..<times { more += line; more.append(10) }
                    b += more
                }
            case 9:   // the header's version
                if let slash = b.firstIndex(of: UInt8(ascii: "/")), slash + 1 < b.count {
                    b[slash + 1] = r.pick(Array("0123456789x ".utf8))
                }
            default:   // a control byte inside a name-like value
                b.insert(contentsOf: r.pick([[0x1b, 0x5d, 0x30, 0x3b, 0x70, 0x77, 0x6e, 0x07], [0x0a], [0x0d], [0x1b, 0x5b, 0x32, 0x4a], [0xc2, 0x9b]]),
                         at: r.below(b.count + 1))
            }
            if b.count > 4 << 20 { b.removeSubrange((4 << 20)...) }   // the sparse-file case is the large one
        }
        return b
    }

    /// Ranges of decimal digits (with an optional 0x and hex digits) in `b`.
    static func numberRuns(_ b: [UInt8]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 102) }
        while i < b.count && runs.count < 4096 {
            if isDigit(b[i]) {
                let start = i
                if b[i] == 48, i + 1 < b.count, b[i + 1] == UInt8(ascii: "x") { i += 2; while i < b.count && isHex(b[i]) { i += 1 } }
                else { while i < b.count && isDigit(b[i]) { i += 1 } }
                runs.append(start..<i)
            } else { i += 1 }
        }
        return runs
    }

    /// The counters file: header words and slot words set to extreme values, bits flipped.
    static func mutateBinary(_ input: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + r.below(4)) {
            switch r.below(5) {
            case 0, 1:   // a header word (0..15) or any word
                let words = b.count / 8
                guard words > 0 else { continue }
                let w = r.chance(60) ? r.below(min(16, words)) : r.below(words)
                let value: UInt64 = r.pick([0, 1, 7, 8, 65, 4096, UInt64.max, UInt64(Int64.max), UInt64(bitPattern: Int64.min),
                                            1 << 20, 1 << 32, 1 << 62, r.next()])
                for k in 0..<8 { b[w * 8 + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
            case 2 where !b.isEmpty:
                let i = r.below(b.count); b[i] ^= UInt8(1) << UInt8(r.below(8))
            case 3 where !b.isEmpty:
                b.removeSubrange(r.below(b.count)...)
            default:
                b += [UInt8](repeating: UInt8(truncatingIfNeeded: r.next()), count: r.below(9000))
            }
        }
        return b
    }

    // ---- One iteration -----------------------------------------------------------------------

    /// Mutates one file of `kind` in its directory, runs the readers, restores the file.
    static func iterate(_ kind: FuzzKind, _ r: inout FuzzRandom) {
        let name = r.pick(kind.files)
        let path = kind.directory.appendingPathComponent(name).path
        let original = saved(path, symlink: kind.symlink)
        defer { restore(path, original, symlink: kind.symlink) }
        remove(path)
        if r.chance(6) {
            // The file itself: what a hostile user can put under a record's name.
            switch r.below(6) {
            case 0: mkfifo(path, 0o600)
            case 1: symlink("/dev/zero", path)
            case 2: mkdir(path, 0o700)
            case 3: symlink(path, path)   // a loop
            case 4, 5:   // sparse: a valid start, then gigabytes of nothing
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                if fd >= 0 {
                    original.withUnsafeBytes { _ = Glibc.write(fd, $0.baseAddress, min($0.count, 4096)) }
                    ftruncate(fd, off_t(r.pick([1 << 30, 8 << 30, (1 << 30) + 17])))
                    close(fd)
                }
            default: break
            }
            write(lastInput, "\(kind.name) \(name): special file\n".utf8.map { $0 })
        } else {
            let mutated = kind.binary ? mutateBinary(original, &r) : mutateText(original, &r)
            if kind.symlink {
                // A symlink target is at most PATH_MAX - 1 bytes and has no NUL.
                let target = String(decoding: mutated.prefix(4000).map { $0 == 0 ? 1 : $0 }, as: UTF8.self)
                symlink(target, path)
            } else {
                write(URL(fileURLWithPath: path), mutated)
            }
            write(lastInput, mutated)
        }
        kind.read(kind.directory)
    }

    static func saved(_ path: String, symlink: Bool) -> [UInt8] {
        if symlink {
            var buffer = [CChar](repeating: 0, count: 4097)
            let n = readlink(path, &buffer, 4096)
            return n > 0 ? buffer[0..<n].map { UInt8(bitPattern: $0) } : []
        }
        return (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }

    static func restore(_ path: String, _ bytes: [UInt8], symlink: Bool) {
        remove(path)
        if symlink { _ = Glibc.symlink(String(decoding: bytes, as: UTF8.self), path) } else { write(URL(fileURLWithPath: path), bytes) }
    }

    static func remove(_ path: String) {
        if unlink(path) != 0 && errno == EISDIR { rmdir(path) }
        rmdir(path)
    }

    static func write(_ url: URL, _ bytes: [UInt8]) {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        bytes.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
                if n <= 0 { break }
                done += n
            }
        }
        close(fd)
    }

    // ---- The run -----------------------------------------------------------------------------

    nonisolated(unsafe) static var iterationStart = 0.0
    nonisolated(unsafe) static var current = ""

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func maxRSSMiB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// Runs `iterations` per kind; aborts the process on a hang (a crash needs no help).
    static func run(_ kinds: [FuzzKind], iterations: Int, seed: UInt64) -> [FuzzFigures] {
        let watchdog = Thread {
            while true {
                sleep(1)
                let started = iterationStart
                if started > 0 && now() - started > hangSeconds {
                    let message = "memdir fuzz: iteration hung for \(hangSeconds) s: \(current); input in \(lastInput.path)\n"
                    FileHandle.standardError.write(Data(message.utf8))
                    abort()
                }
            }
        }
        watchdog.start()
        var figures: [FuzzFigures] = []
        for (k, kind) in kinds.enumerated() {
            var r = FuzzRandom(state: seed &+ UInt64(k) &* 0x1000_0000_0000)
            let start = now()
            var slowest = 0.0
            for i in 0..<iterations {
                current = "\(kind.name) iteration \(i) (seed \(seed))"
                let t = now()
                iterationStart = t
                iterate(kind, &r)
                iterationStart = 0
                slowest = max(slowest, now() - t)
            }
            let f = FuzzFigures(kind: kind.name, iterations: iterations, seconds: now() - start, slowestSeconds: slowest,
                                maxRSSMiB: maxRSSMiB())
            figures.append(f)
            FileHandle.standardError.write(Data(("memdir fuzz: \(f.kind) \(f.iterations) in "
                + String(format: "%.1f s (slowest %.3f s), peak RSS %.0f MiB\n", f.seconds, f.slowestSeconds, f.maxRSSMiB)).utf8))
        }
        return figures
    }
}
