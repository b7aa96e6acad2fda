// Harness.swift: runs the built libmemtrack.so and memdir on the programs in Examples/.
//
// - The package root comes from #filePath; libmemtrack.so and memdir are looked up next to the
//   test bundle (the build products directory), like swift-argument-parser's
//   AssertExecuteCommand finds its executables. MEMDIR_E2E_BIN=dir overrides that.
// - The examples are built once per test process with `make -C Examples OUT=<products>/e2e-examples`;
//   the programs a suite compiles itself (stress, faults, aarch64) go through `Compile.run`, which
//   like make only rebuilds what changed.
// - The fast tier (unit tests and one end-to-end smoke test, SmokeTests.swift) is
//   `swift test --filter 'MemdirKitTests|EndToEnd/Smoke'`; the whole suite is `swift test`.
// - Every run gets a fresh MEM_DIR in a temporary directory that the test removes, on tmpfs
//   (/dev/shm) where there is one, as README advises (Scratch).

import Foundation
import Testing
import MemdirKit

#if canImport(Glibc)
import Glibc
#endif

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum E2E {
    /// The package root: Tests/EndToEndTests/Harness.swift -> ../../..
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var examplesSource: URL { packageRoot.appendingPathComponent("Examples") }

    /// The directory holding libmemtrack.so and memdir.
    static let productsDirectory: Result<URL, HarnessError> = {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let dir = ProcessInfo.processInfo.environment["MEMDIR_E2E_BIN"] {
            candidates.append(URL(fileURLWithPath: dir))
        }
        let bundle = Bundle.main.bundleURL
        candidates.append(bundle)
        candidates.append(bundle.deletingLastPathComponent())
        if let exe = Bundle.main.executableURL {
            candidates.append(exe.deletingLastPathComponent())
        }
        if let arg0 = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: arg0)
            candidates.append(url.deletingLastPathComponent())
            // .../debug/memdirPackageTests.xctest (a bundle directory on some platforms)
            candidates.append(url.deletingLastPathComponent().deletingLastPathComponent())
        }
        for dir in candidates {
            let lib = dir.appendingPathComponent("libmemtrack.so").path
            let cli = dir.appendingPathComponent("memdir").path
            if fm.fileExists(atPath: lib) && fm.isExecutableFile(atPath: cli) {
                return .success(dir.standardizedFileURL)
            }
        }
        return .failure(HarnessError(
            "libmemtrack.so and memdir not found next to the test bundle (looked in \(candidates.map(\.path))); "
                + "run `swift build` first, or set MEMDIR_E2E_BIN"))
    }()

    static func products() throws -> URL { try productsDirectory.get() }
    static func library() throws -> String { try products().appendingPathComponent("libmemtrack.so").path }
    static func memdirPath() throws -> String { try products().appendingPathComponent("memdir").path }

    /// Examples built once per test process (Swift initializes static lets once, thread-safely).
    static let examplesBuild: Result<URL, HarnessError> = {
        let out: URL
        switch productsDirectory {
        case .success(let dir): out = dir.appendingPathComponent("e2e-examples")
        case .failure:
            out = FileManager.default.temporaryDirectory.appendingPathComponent("memdir-e2e-examples-\(getpid())")
        }
        // One job per core: a fresh checkout builds some 60 programs.
        let jobs = "-j\(max(ProcessInfo.processInfo.activeProcessorCount, 1))"
        let result = runProgram("/usr/bin/env", ["make", "-s", jobs, "-C", examplesSource.path, "OUT=\(out.path)"],
                                environment: cleanEnvironment(), timeout: 600)
        guard result.exitedNormally && result.status == 0 else {
            return .failure(HarnessError("make -C Examples failed (\(result.statusDescription)):\n\(result.stderrText)\(result.stdoutText)"))
        }
        return .success(out)
    }()

    /// Path of a built example, e.g. `example("seeds")`.
    static func example(_ name: String) throws -> String {
        let path = try examplesBuild.get().appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) || FileManager.default.fileExists(atPath: path) else {
            throw HarnessError("example \(name) was not built (\(path))")
        }
        return path
    }

    /// The environment of the test process without anything that would change a tracked run.
    static func cleanEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key == "LD_PRELOAD" || key.hasPrefix("MEM_") || key.hasPrefix("MALLOC_") {
            env.removeValue(forKey: key)
        }
        env["LC_ALL"] = "C"
        return env
    }
}

// MARK: - Source markers

/// The 1-based line of the only line of `Examples/<file>` containing `marker`.
func sourceLine(_ file: String, _ marker: String) throws -> Int {
    let text = try String(contentsOf: E2E.examplesSource.appendingPathComponent(file), encoding: .utf8)
    let hits = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        .filter { $0.element.contains(marker) }.map { $0.offset + 1 }
    guard hits.count == 1 else { throw HarnessError("marker \"\(marker)\" occurs \(hits.count) times in \(file)") }
    return hits[0]
}

/// `file:line` of a marker, the way a resolved frame ends.
func location(_ file: String, _ marker: String) throws -> String {
    "\(file):\(try sourceLine(file, marker))"
}

/// Whether a resolved frame `function file:line` (or a bare `file:line`) is at `loc` (`seeds.c:14`);
/// the file may carry a directory.
func frame(_ frame: String, isAt loc: String) -> Bool {
    let place = frame.split(separator: " ").last.map(String.init) ?? frame
    return place == loc || place.hasSuffix("/" + loc)
}

// MARK: - Running programs

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A program's stdout read one line at a time (the drivers of the server-like examples).
struct LineReader {
    /// What was read past the last line returned.
    private(set) var buffered = Data()

    /// The next line without its newline; nil when the program closed its stdout first.
    mutating func next(from handle: FileHandle) -> String? {
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[buffered.startIndex..<newline], as: UTF8.self)
                buffered.removeSubrange(buffered.startIndex...newline)
                return line
            }
            let more = handle.availableData
            if more.isEmpty { return nil }
            buffered.append(more)
        }
    }
}

struct RunResult: Sendable {
    var stdout: Data
    var stderr: Data
    /// Exit code, or the signal number when `exitedNormally` is false.
    var status: Int32
    var exitedNormally: Bool
    var timedOut: Bool

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    var stderrLines: [String] { stderrText.split(separator: "\n").map(String.init) }
    var statusDescription: String {
        (timedOut ? "timed out, " : "") + (exitedNormally ? "exit \(status)" : "signal \(status)")
    }
}

/// Pipes and process starts, one at a time. Foundation's Process closes in the child the
/// descriptors that are open when it starts it; one another thread opens in that instant stays
/// open in the child. The tests run in parallel: a pipe's write end leaked into a program of
/// another test would hold off this test's end of file until that program exits.
enum Spawn {
    private static let lock = NSLock()
    static func pipe() -> Pipe { lock.lock(); defer { lock.unlock() }; return Pipe() }
    static func run(_ process: Process) throws { lock.lock(); defer { lock.unlock() }; try process.run() }
}

/// Runs `executable` with `arguments` (no shell), collecting stdout and stderr through pipes.
/// A run longer than `timeout` seconds is killed with SIGKILL.
func runProgram(_ executable: String, _ arguments: [String], environment: [String: String],
                currentDirectory: URL? = nil, stdin: Data? = nil, timeout: Double = 120) -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = environment
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let out = Spawn.pipe(), err = Spawn.pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Spawn.pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    let outData = LockedData(), errData = LockedData()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            box.append(pipe.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
    }
    do {
        try Spawn.run(process)
    } catch {
        out.fileHandleForWriting.closeFile(); err.fileHandleForWriting.closeFile()
        group.wait()
        return RunResult(stdout: Data(), stderr: Data("cannot run \(executable): \(error)".utf8),
                         status: 127, exitedNormally: true, timedOut: false)
    }
    if let stdin {
        input.fileHandleForWriting.write(stdin)
        input.fileHandleForWriting.closeFile()
    }
    let pid = process.processIdentifier
    let timedOut = LockedFlag()
    let watchdog = DispatchWorkItem {
        timedOut.set()
        kill(pid, SIGKILL)
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    process.waitUntilExit()
    watchdog.cancel()
    group.wait()
    return RunResult(stdout: outData.value, stderr: errData.value, status: process.terminationStatus,
                     exitedNormally: process.terminationReason == .exit, timedOut: timedOut.value)
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

/// Settings of one tracked run; nil leaves the tracker's default.
struct Tracking {
    var memDir: URL
    var settleMs: Int? = nil
    var depth: Int? = nil
    var freeres: Int? = nil
    var quarantine: Int? = nil
    /// Libraries preloaded after the tracker (its "next" allocator), and settings for them.
    var preloadAfter: [String] = []
    var environment: [String: String] = [:]

    func apply(to env: inout [String: String]) throws {
        env.merge(environment) { $1 }
        env["LD_PRELOAD"] = ([try E2E.library()] + preloadAfter).joined(separator: " ")
        env["MEM_DIR"] = memDir.path
        if let settleMs { env["MEM_SETTLE_MS"] = String(settleMs) }
        if let depth { env["MEM_DEPTH"] = String(depth) }
        if let freeres { env["MEM_FREERES"] = String(freeres) }
        if let quarantine { env["MEM_QUARANTINE"] = String(quarantine) }
    }
}

/// Runs a program under the tracker.
func runTracked(_ executable: String, _ arguments: [String] = [], _ tracking: Tracking,
                extraEnvironment: [String: String] = [:], currentDirectory: URL? = nil,
                timeout: Double = 120) throws -> RunResult {
    var env = E2E.cleanEnvironment()
    env.merge(extraEnvironment) { $1 }
    try tracking.apply(to: &env)
    return runProgram(executable, arguments, environment: env,
                      currentDirectory: currentDirectory ?? tracking.memDir.deletingLastPathComponent(),
                      timeout: timeout)
}

/// Runs a program without the tracker.
func runPlain(_ executable: String, _ arguments: [String] = [], extraEnvironment: [String: String] = [:],
              currentDirectory: URL? = nil, timeout: Double = 120) -> RunResult {
    var env = E2E.cleanEnvironment()
    env.merge(extraEnvironment) { $1 }
    return runProgram(executable, arguments, environment: env, currentDirectory: currentDirectory, timeout: timeout)
}

/// Runs the memdir CLI (never under the tracker).
func memdir(_ arguments: [String], currentDirectory: URL? = nil) throws -> RunResult {
    runProgram(try E2E.memdirPath(), arguments, environment: E2E.cleanEnvironment(),
               currentDirectory: currentDirectory, timeout: 120)
}

// MARK: - Temporary directories

/// A fresh directory for one test: `root` holds `mem` (the MEM_DIR, not created: the tracker
/// creates it) and anything else the test needs. Removed by `remove()`.
struct Scratch {
    let root: URL
    var memDir: URL { root.appendingPathComponent("mem") }

    /// Under /dev/shm when it is a writable tmpfs: where README tells users to keep MEM_DIR (a
    /// record costs 3-8 µs there, 240-570 µs on this VM's ext4), and where the fault and hang
    /// reproducers' rates were measured (Examples/stress/rate.py). `onDisk`: the temporary
    /// directory, for a test about a disk, and for the timing-dependent tests whose failures were
    /// seen with MEM_DIR there (Stress_, LeakCheckSafety): slow writes widen their windows.
    init(onDisk: Bool = false) throws {
        let base = !onDisk && Scratch.tmpfs != nil ? URL(fileURLWithPath: Scratch.tmpfs!) : FileManager.default.temporaryDirectory
        let template = base.appendingPathComponent("memdir-e2e.XXXXXX").path
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw HarnessError("mkdtemp failed: \(errno)") }
        root = URL(fileURLWithPath: String(cString: made))
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// /dev/shm when it is a tmpfs this process can write, else nil.
    static let tmpfs: String? = {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        let isTmpfs = mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().prefix(2) == ["/dev/shm", "tmpfs"] }
        return isTmpfs && FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : nil
    }()
}

/// Runs `body` with a fresh scratch directory and removes it afterwards.
func withScratch<T>(onDisk: Bool = false, _ body: (Scratch) throws -> T) throws -> T {
    let scratch = try Scratch(onDisk: onDisk)
    defer { scratch.remove() }
    return try body(scratch)
}

// MARK: - Reading run directories (block records through MemdirKit's parser, both formats; the rest by hand)

/// One record line: `memtrack/1 KIND key=value ...`.
struct RecordLine {
    var kind: String
    var fields: [String: String]

    init(kind: String, fields: [String: String]) {
        self.kind = kind
        self.fields = fields
    }

    /// A block as memdir's own parser reads it (record format 1 or 2).
    init(block: BlockSample) {
        var fields = [
            "address": "0x" + String(block.address, radix: 16), "size": String(block.size), "seq": String(block.seq),
            "thread": String(block.thread), "ms": String(block.ms), "via": block.via,
            "stack": block.stack.map { "0x" + String($0, radix: 16) }.joined(separator: ","),
        ]
        if let family = block.family { fields["family"] = family }
        if let source = block.source { fields["src"] = source }
        self.init(kind: "block", fields: fields)
    }

    init(parsing line: Substring) throws {
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0] == "memtrack/1" else { throw HarnessError("bad record line: \(line)") }
        kind = String(words[1])
        fields = [:]
        for word in words.dropFirst(2) {
            guard let eq = word.firstIndex(of: "=") else { throw HarnessError("bad field \(word) in: \(line)") }
            fields[String(word[..<eq])] = String(word[word.index(after: eq)...])
        }
    }

    func int(_ key: String) -> Int? { fields[key].flatMap { parseNumber($0) } }
    var size: Int? { int("size") }
    var address: String? { fields["address"] }
    var stack: [String] { fields["stack"].map { $0.split(separator: ",").map(String.init) } ?? [] }
}

func parseNumber(_ text: String) -> Int? {
    if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
    return Int(text)
}

/// One run directory: MEM_DIR/<pid>[.n].
struct RunDirectory {
    var name: String
    var url: URL
    var files: [String]
    /// `process`: key -> values in order (`arg` repeats).
    var process: [String: [String]]
    var status: [String: String]
    var blocks: [String: RecordLine]   // file name -> record
    var badFrees: [String: RecordLine] // file name -> record
    var modules: [RecordLine]

    var exe: String? { process["exe"]?.first }
    var args: [String] { process["arg"] ?? [] }
    var parent: String? { process["parent"]?.first }
    var pid: Int? { process["pid"]?.first.flatMap { Int($0) } }
    var blockSizes: [Int] { blocks.values.compactMap(\.size).sorted() }
    var totalBytes: Int { blocks.values.compactMap(\.size).reduce(0, +) }
    var state: String? { status["state"] }
    func counter(_ key: String) -> Int? { status[key].flatMap { Int($0) } }
}

/// Reads a `key value` file (process, status) after its header line.
func readKeyValueFile(_ url: URL, kind: String) throws -> [String: [String]] {
    let text = try String(contentsOf: url, encoding: .utf8)
    var lines = text.split(separator: "\n")
    guard let header = lines.first, header == "memtrack/1 \(kind)" else {
        throw HarnessError("\(url.path): bad header \(lines.first ?? "")")
    }
    lines.removeFirst()
    var result: [String: [String]] = [:]
    for line in lines {
        let parts = line.split(separator: " ", maxSplits: 1)
        guard let key = parts.first else { continue }
        result[String(key), default: []].append(parts.count > 1 ? String(parts[1]) : "")
    }
    return result
}

func readRunDirectory(_ url: URL) throws -> RunDirectory {
    let fm = FileManager.default
    let files = try fm.contentsOfDirectory(atPath: url.path).sorted()
    var dir = RunDirectory(name: url.lastPathComponent, url: url, files: files, process: [:], status: [:],
                           blocks: [:], badFrees: [:], modules: [])
    if files.contains("process") {
        dir.process = try readKeyValueFile(url.appendingPathComponent("process"), kind: "process")
    }
    if files.contains("status") {
        dir.status = try readKeyValueFile(url.appendingPathComponent("status"), kind: "status").mapValues { $0.last ?? "" }
    }
    if files.contains("modules") {
        let text = try String(contentsOf: url.appendingPathComponent("modules"), encoding: .utf8)
        dir.modules = text.split(separator: "\n").dropFirst().compactMap { line in
            // path runs to the end of the line: parse only the fixed fields.
            let head = line.split(separator: " ", maxSplits: 5)
            guard head.count >= 5 else { return nil }
            return try? RecordLine(parsing: "memtrack/1 " + head.prefix(5).joined(separator: " "))
        }
    }
    // Block records (symlinks in format 2, files in format 1) through memdir's own parser.
    for (file, block) in try BlockRecordV2.readAll(runDirectory: url.path) {
        dir.blocks[file] = RecordLine(block: block)
    }
    for file in files {
        let fileURL = url.appendingPathComponent(file)
        if file.hasPrefix("bad-") && file.hasSuffix(".free") {
            let text = try String(contentsOf: fileURL, encoding: .utf8)
            dir.badFrees[file] = try RecordLine(parsing: text.split(separator: "\n").first ?? "")
        }
    }
    return dir
}

/// All run directories under a MEM_DIR, sorted by name.
func runDirectories(_ memDir: URL) throws -> [RunDirectory] {
    let fm = FileManager.default
    guard fm.fileExists(atPath: memDir.path) else { return [] }
    return try fm.contentsOfDirectory(atPath: memDir.path).sorted().compactMap { name in
        var isDir: ObjCBool = false
        let url = memDir.appendingPathComponent(name)
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else { return nil }
        return try readRunDirectory(url)
    }
}

/// The only run directory under a MEM_DIR.
func onlyRunDirectory(_ memDir: URL, sourceLocation: SourceLocation = #_sourceLocation) throws -> RunDirectory {
    let dirs = try runDirectories(memDir)
    try #require(dirs.count == 1, "expected one run directory, found \(dirs.map(\.name))", sourceLocation: sourceLocation)
    return dirs[0]
}

// MARK: - memdir JSON

/// Parses memdir's `--json` output.
func parseJSON(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let object = try? JSONSerialization.jsonObject(with: result.stdout)
    guard let dict = object as? [String: Any] else {
        throw HarnessError("memdir did not print a JSON object (\(result.statusDescription)):\n\(result.stdoutText)\n\(result.stderrText)")
    }
    return dict
}

// MARK: - memdir reports, read from `--json` ("memdir-report/2")

/// One leak group or bad free of a memdir report.
struct ReportGroup {
    var kind: String            // "definitely_lost"... "not_classified", "double-free", "invalid-free"
    var blocks: Int
    var bytes: Int
    /// The attributed frame as `function file:line` (memdir's group location).
    var attributed: String?
    /// The whole stack, innermost first, each `function file:line` (or `module+0xOFF`).
    var frames: [String]
    var address: String?
    var raw: [String: Any]
}

struct ProcessReportView {
    var name: String
    var leaks: [ReportGroup]
    var badFrees: [ReportGroup]
    var raw: [String: Any]
}

struct ReportView {
    var processes: [ProcessReportView]
    var raw: [String: Any]
    var leaks: [ReportGroup] { processes.flatMap(\.leaks) }
    var badFrees: [ReportGroup] { processes.flatMap(\.badFrees) }
    var totalLeakedBytes: Int { leaks.reduce(0) { $0 + $1.bytes } }
    var totalLeakedBlocks: Int { leaks.reduce(0) { $0 + $1.blocks } }
    /// The leak groups whose attributed frame is at `loc` (`seeds.c:14`).
    func leaks(at loc: String) -> [ReportGroup] { leaks.filter { $0.attributed.map { frame($0, isAt: loc) } ?? false } }
}

private func jsonInt(_ value: Any?) -> Int? {
    if let n = value as? Int { return n }
    if let n = value as? NSNumber { return n.intValue }
    if let s = value as? String { return parseNumber(s) }
    return nil
}

/// The symbols of one stack entry as `function file:line`, innermost inlined first; the
/// entry's `module+0xOFFSET` when it has none.
private func frameTexts(_ value: Any) -> [String] {
    if let s = value as? String { return [s] }
    guard let d = value as? [String: Any] else { return ["\(value)"] }
    let place = (d["location"] as? String) ?? "\(d["address"] ?? "?")"
    let symbols = (d["symbols"] as? [[String: Any]]) ?? []
    if symbols.isEmpty { return [place] }
    return symbols.map { s in
        let function = s["function"] as? String
        let file = s["file"] as? String
        let line = jsonInt(s["line"]).map(String.init) ?? "?"
        switch (function, file) {
        case (let f?, let file?): return "\(f) \(file):\(line)"
        case (let f?, nil): return "\(f) (\(place))"
        case (nil, let file?): return "\(place) \(file):\(line)"
        case (nil, nil): return place
        }
    }
}

private func stackTexts(_ value: Any?) -> [String] {
    (value as? [Any])?.flatMap(frameTexts) ?? []
}

private func group(_ d: [String: Any], kind defaultKind: String) -> ReportGroup {
    ReportGroup(kind: (d["kind"] as? String) ?? defaultKind,
                blocks: jsonInt(d["blocks"]) ?? 1,
                bytes: jsonInt(d["bytes"]) ?? jsonInt(d["size"]) ?? 0,
                attributed: d["location"] as? String,
                frames: stackTexts(d["stack"]),
                address: d["address"] as? String,
                raw: d)
}

func reportView(_ json: [String: Any]) throws -> ReportView {
    guard let schema = json["schema"] as? String, schema == "memdir-report/2" else {
        throw HarnessError("not a memdir-report/2 document: \(json.keys.sorted())")
    }
    let processes = (json["processes"] as? [[String: Any]]) ?? []
    return ReportView(processes: processes.map { p in
        ProcessReportView(
            name: ((p["run_directory"] as? String) ?? "").split(separator: "/").last.map(String.init) ?? "",
            leaks: ((p["leaks"] as? [[String: Any]]) ?? []).map { group($0, kind: "leak") },
            badFrees: ((p["bad_frees"] as? [[String: Any]]) ?? []).map { group($0, kind: "bad-free") },
            raw: p)
    }, raw: json)
}

/// `memdir resolve DIR --json --show-leak-kinds all [extra]`: every live block, whatever its kind.
func resolveReport(_ dir: URL, extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> ReportView {
    let result = try memdir(["resolve", dir.path, "--json", "--show-leak-kinds", "all"] + extra)
    #expect(result.exitedNormally && result.status == 0,
            "memdir resolve: \(result.statusDescription)\n\(result.stderrText)", sourceLocation: sourceLocation)
    return try reportView(try parseJSON(result))
}

/// `memdir list DIR --json --show-leak-kinds all [extra]`: every live block, whatever its kind.
func listReport(_ dir: URL, extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> ReportView {
    let result = try memdir(["list", dir.path, "--json", "--show-leak-kinds", "all"] + extra)
    #expect(result.exitedNormally && result.status == 0,
            "memdir list: \(result.statusDescription)\n\(result.stderrText)", sourceLocation: sourceLocation)
    return try reportView(try parseJSON(result))
}

// MARK: - Paths

/// The canonical form of a path (symbolic links resolved), or the path itself.
func canonicalPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Whether a recorded `exe` names the file at `path` (the tracker records /proc/self/exe, with
/// symbolic links resolved).
func isExecutable(_ exe: String?, _ path: String) -> Bool {
    guard let exe else { return false }
    return canonicalPath(exe) == canonicalPath(path)
}

// MARK: - Sharing the machine

/// Who may run next to whom. Swift Testing runs the end-to-end tests in parallel, as many at a
/// time as the machine has cores (its cooperative pool; every test here blocks a pool thread while
/// its programs run). Most tests only count and compare, and run side by side. A test whose
/// outcome depends on time (a record must appear within MEM_SETTLE_MS + 200 ms, blocks must
/// outlive or not outlive a settle time) takes the machine to itself with `.machineToItself`: it
/// waits for the end-to-end tests running to end, and no other starts until it is done.
actor MachineLock {
    static let shared = MachineLock()
    private var sharers = 0
    private var owned = false
    /// Waiting tests in arrival order: a waiting exclusive test keeps later sharers out.
    private var queue: [(exclusive: Bool, resume: CheckedContinuation<Void, Never>)] = []

    func acquire(exclusive: Bool) async {
        if queue.isEmpty && !owned && (!exclusive || sharers == 0) {
            if exclusive { owned = true } else { sharers += 1 }
            return
        }
        // Suspends without holding a thread: the pool runs other tests meanwhile.
        await withCheckedContinuation { queue.append((exclusive, $0)) }
    }

    func release(exclusive: Bool) {
        if exclusive { owned = false } else { sharers -= 1 }
        while let next = queue.first, !owned, !next.exclusive || sharers == 0 {
            if next.exclusive { owned = true } else { sharers += 1 }
            queue.removeFirst()
            next.resume.resume()
        }
    }
}

/// `.sharesTheMachine` (on `EndToEnd`, so on every end-to-end test) and `.machineToItself`.
struct MachineUse: SuiteTrait, TestTrait, TestScoping {
    var exclusive: Bool
    var isRecursive: Bool { true }

    /// Each test case takes the lock, not the suite around them.
    func scopeProvider(for test: Test, testCase: Test.Case?) -> MachineUse? { testCase == nil ? nil : self }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        // A test with both (EndToEnd's and its own) is scoped by the exclusive one only.
        if !exclusive && test.traits.contains(where: { ($0 as? MachineUse)?.exclusive == true }) {
            try await function()
            return
        }
        await MachineLock.shared.acquire(exclusive: exclusive)
        do {
            try await function()
        } catch {
            await MachineLock.shared.release(exclusive: exclusive)
            throw error
        }
        await MachineLock.shared.release(exclusive: exclusive)
    }
}

extension Trait where Self == MachineUse {
    static var sharesTheMachine: Self { MachineUse(exclusive: false) }
    static var machineToItself: Self { MachineUse(exclusive: true) }
}

// MARK: - Programs the suites compile themselves

/// One compiler run of a suite's own build (stress programs, faults, the aarch64 tracker).
struct CompileStep: Sendable {
    var tool: String
    var arguments: [String]
    /// The file the step makes (also named in `arguments`).
    var output: URL
    /// What it is made from: a step is run again when one is newer than `output`.
    var inputs: [URL]
}

enum Compile {
    /// Every file under `directory` (recursively).
    static func files(under directory: URL) -> [URL] {
        (FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? [])
            .map { directory.appendingPathComponent($0) }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
    }

    static func modified(_ url: URL) -> Date? { try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate }

    /// Runs the steps, two or more at a time (one per core), each only when its output is missing,
    /// older than an input, or was made by another command line (make's rule, and the command
    /// kept next to the output as `OUTPUT.cmd`): the next test run reuses what this one built.
    static func run(_ steps: [CompileStep], currentDirectory: URL? = nil) -> HarnessError? {
        let failures = LockedData()
        DispatchQueue.concurrentPerform(iterations: steps.count) { i in
            let step = steps[i]
            let command = ([step.tool] + step.arguments).joined(separator: "\u{0}")
            let stamp = URL(fileURLWithPath: step.output.path + ".cmd")
            if let made = modified(step.output),
               (try? String(contentsOf: stamp, encoding: .utf8)) == command,
               step.inputs.allSatisfy({ (modified($0) ?? .distantFuture) <= made }) {
                return
            }
            try? FileManager.default.removeItem(at: stamp)
            let result = runProgram(step.tool, step.arguments, environment: E2E.cleanEnvironment(),
                                    currentDirectory: currentDirectory, timeout: 300)
            if result.exitedNormally && result.status == 0 {
                try? command.write(to: stamp, atomically: true, encoding: .utf8)
            } else {
                failures.append(Data("\(step.tool) \(step.arguments.joined(separator: " ")) failed (\(result.statusDescription)):\n\(result.stderrText)\n".utf8))
            }
        }
        let text = String(decoding: failures.value, as: UTF8.self)
        return text.isEmpty ? nil : HarnessError(text)
    }

    /// `products/NAME`, created: where a suite keeps what it compiles between test runs.
    static func directory(_ name: String) -> Result<URL, HarnessError> {
        E2E.productsDirectory.flatMap { products in
            let out = products.appendingPathComponent(name)
            do {
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            } catch {
                return .failure(HarnessError("cannot create \(out.path): \(error)"))
            }
            return .success(out)
        }
    }

    /// Headers an example may include: Examples/ and memtrack.h's.
    static var exampleHeaders: [URL] {
        (files(under: E2E.examplesSource) + files(under: E2E.packageRoot.appendingPathComponent("Sources/MemtrackInterposer/include")))
            .filter { $0.pathExtension == "h" }
    }
}
