// RobustnessTests.swift: the tracker changes nothing a program can see (output, exit status),
// even when it cannot record; and its counts agree with valgrind's on programs nobody here wrote.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite struct Robustness {
        @Test("output: stdout to a pipe, stderr and exit status byte-identical with and without the tracker",
              arguments: bothModes)
        func outputUnchanged(settleMs: Int?) throws {
            let program = try E2E.example("output")
            try withScratch { scratch in
                let plain = runPlain(program)
                let tracked = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(plain.exitedNormally && plain.status == 3)
                #expect(tracked.exitedNormally && tracked.status == 3, "\(tracked.statusDescription)")
                #expect(tracked.stdout == plain.stdout, "stdout differs (\(tracked.stdout.count) vs \(plain.stdout.count) bytes)")
                #expect(plain.stdout.count > 10_000)
                #expect(tracked.stderr == plain.stderr, "\(tracked.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [64], "the stdout buffer is freed at exit (MEM_FREERES=1)")
                #expect(dir.state == "exit" && dir.status["code"] == "3")
            }
            // The raw view: glibc keeps its stdout buffer (a pipe: 4096 bytes) to the end.
            try withScratch { scratch in
                let raw = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs, freeres: 0))
                #expect(raw.exitedNormally && raw.status == 3)
                #expect(try onlyRunDirectory(scratch.memDir).blockSizes == [64, 4096])
            }
        }

        @Test("a MEM_ setting that is not a whole number: one warning, the default used, the run unchanged")
        func badSetting() throws {
            let program = try E2E.example("seeds")
            try withScratch { scratch in
                let tracked = try runTracked(program, [], Tracking(memDir: scratch.memDir),
                                             extraEnvironment: ["MEM_DEPTH": "twelve"])
                #expect(tracked.exitedNormally && tracked.status == 0, "\(tracked.statusDescription)")
                let warnings = tracked.stderrLines.filter { $0.hasPrefix("memtrack: warning:") }
                #expect(warnings == ["memtrack: warning: MEM_DEPTH=twelve is not a whole number; using the default"])
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.process["depth"] == ["12"])
                #expect(dir.blockSizes == [30])
            }
        }

        @Test("unwritable MEM_DIR: same output and status, exactly one warning line", arguments: bothModes)
        func unwritableDirectory(settleMs: Int?) throws {
            let program = try E2E.example("output")
            try withScratch { scratch in
                // We run as root: a read-only directory would not stop us. A path below a regular
                // file cannot be created by anyone.
                let file = scratch.root.appendingPathComponent("file")
                try Data("not a directory\n".utf8).write(to: file)
                let memDir = file.appendingPathComponent("mem")
                let plain = runPlain(program)
                let tracked = try runTracked(program, [], Tracking(memDir: memDir, settleMs: settleMs),
                                             currentDirectory: scratch.root)
                #expect(tracked.exitedNormally && tracked.status == plain.status, "\(tracked.statusDescription)")
                #expect(tracked.stdout == plain.stdout)
                var extra = tracked.stderrLines
                for line in plain.stderrLines {
                    if let i = extra.firstIndex(of: line) { extra.remove(at: i) }
                }
                #expect(extra.count == 1, "want exactly one tracker warning, got \(extra)")
                #expect(tracked.stderrLines.count == plain.stderrLines.count + 1)
                #expect(try String(contentsOf: file, encoding: .utf8) == "not a directory\n")
            }
        }

        @Test("files exhausted (ulimit -n 16): same behaviour, and the record is still complete (the tracker's descriptors are not the program's)",
              arguments: bothModes)
        func descriptorsExhausted(settleMs: Int?) throws {
            let program = try E2E.example("fdhog")
            // The shell lowers the limit and execs fdhog; only fdhog gets LD_PRELOAD.
            let script = "ulimit -n 16 || exit 99; [ -n \"$E2E_PRELOAD\" ] && export LD_PRELOAD=\"$E2E_PRELOAD\"; exec \"$0\""
            try withScratch { scratch in
                let plain = runPlain("/bin/sh", ["-c", script, program])
                #expect(plain.exitedNormally && plain.status == 0, "\(plain.statusDescription) \(plain.stderrText)")
                #expect(plain.stdoutText == "fdhog: out of descriptors\n")

                var env = E2E.cleanEnvironment()
                try Tracking(memDir: scratch.memDir, settleMs: settleMs).apply(to: &env)
                env["E2E_PRELOAD"] = env.removeValue(forKey: "LD_PRELOAD")
                let tracked = runProgram("/bin/sh", ["-c", script, program], environment: env, currentDirectory: scratch.root)
                #expect(tracked.exitedNormally && tracked.status == plain.status, "\(tracked.statusDescription) \(tracked.stderrText)")
                #expect(tracked.stdout == plain.stdout)
                #expect(tracked.stderrLines.count <= plain.stderrLines.count + 1, "at most one warning: \(tracked.stderrText)")

                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(isExecutable(dir.exe, program), "\(dir.exe ?? "nil")")
                #expect(dir.state == "exit" && dir.status["code"] == "0", "\(dir.status)")
                #expect(dir.counter("unrecorded-blocks") == 0 && dir.status["error"] == nil, "\(dir.status)")
                #expect(dir.blockSizes.filter { $0 == 777 }.count == 5, "\(dir.blockSizes)")
                #expect(tracked.stderr.isEmpty, "\(tracked.stderrText)")

                let json = try parseJSON(try memdir(["list", scratch.memDir.path, "--json"]))
                let status = (try reportView(json).processes.first?.raw["status"]) as? [String: Any]
                #expect(status?["complete"] as? Bool == true, "\(status ?? [:])")
            }
        }
    }
}

// MARK: - valgrind agreement

let valgrindPath: String? = ["/usr/bin/valgrind", "/usr/local/bin/valgrind"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// valgrind for a comparison that follows a test's own checks: without it the comparison is
/// left out, and under .ci/run (which installs valgrind and sets MEMDIR_REQUIRE_VALGRIND) that is
/// an issue, so it cannot pass unseen.
func valgrindForComparison(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    if valgrindPath == nil && ProcessInfo.processInfo.environment["MEMDIR_REQUIRE_VALGRIND"] != nil {
        Issue.record("valgrind is not installed: the comparison with valgrind did not run (.ci/run installs it)",
                     sourceLocation: sourceLocation)
    }
    return valgrindPath
}

/// A program nobody here wrote, with inputs small enough to run in seconds under valgrind.
struct ForeignProgram: CustomTestStringConvertible, Sendable {
    var name: String
    var executable: String
    var arguments: [String]
    var environment: [String: String] = [:]
    /// Written to the scratch directory as `input.txt` before the run.
    var input: String? = nil
    var testDescription: String { name }
}

let sortInput: String = {
    var state: UInt32 = 12345
    var lines: [String] = []
    for _ in 0..<300 {
        var word = ""
        for _ in 0..<8 {
            state = state &* 1_103_515_245 &+ 12345
            word.append(Character(UnicodeScalar(UInt8(97 + (state >> 16) % 10))))
        }
        lines.append(word)
    }
    return lines.joined(separator: "\n") + "\n"
}()

let foreignPrograms: [ForeignProgram] = [
    ForeignProgram(name: "sort", executable: "/usr/bin/sort", arguments: ["input.txt"], input: sortInput),
    ForeignProgram(name: "python3 json", executable: "/usr/bin/python3",
                   arguments: ["-S", "-c", "import json; d={'a':[1,2,3],'b':{'c':'x'*50}}; s=json.dumps(d); assert json.loads(s)==d; print(len(s))"],
                   environment: ["PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"]),
    ForeignProgram(name: "perl hash", executable: "/usr/bin/perl",
                   arguments: ["-e", "my %h; $h{\"k$_\"} = $_ * 2 for 1..200; my $s = 0; $s += $h{$_} for keys %h; print \"$s\\n\""],
                   environment: ["PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"]),
    ForeignProgram(name: "sed", executable: "/usr/bin/sed", arguments: ["-e", "s/a/A/g", "-e", "/b/d", "input.txt"], input: sortInput),
    ForeignProgram(name: "ls", executable: "/usr/bin/ls", arguments: ["-l", "/usr/bin/ls", "/usr/bin/sed", "/usr/bin/sort", "/etc"]),
]

/// The environment a program gets from valgrind, in its order: valgrind runs /usr/bin/env with
/// `environment` and the printed lines come back. Debian's wrapper script adds variables
/// (LD_LIBRARY_PATH=/usr/lib/debug, GLIBCXX_FORCE_NEW=1, PWD), its shell reorders them, and
/// valgrind puts its own libraries in front of LD_PRELOAD.
func environmentUnderValgrind(_ valgrind: String, _ environment: [String: String], currentDirectory: URL) -> [String]? {
    let probe = runProgram(valgrind, ["-q", "/usr/bin/env"], environment: environment, currentDirectory: currentDirectory)
    guard probe.exitedNormally, probe.status == 0 else { return nil }
    return probe.stdoutText.split(separator: "\n").map(String.init).filter { $0.contains("=") }
}

/// Valgrind's own LD_PRELOAD value (its preload libraries), nothing inherited.
let valgrindOwnPreload: String? = {
    guard let valgrind = valgrindPath,
          let env = environmentUnderValgrind(valgrind, ["PATH": "/usr/bin:/bin"], currentDirectory: URL(fileURLWithPath: "/"))
    else { return nil }
    return env.first { $0.hasPrefix("LD_PRELOAD=") }.map { String($0.dropFirst(11)) }
}()

/// valgrind's run of a foreign program, made once per test process and shared by every test that
/// compares with it (ValgrindAgreement in both settle modes, ValgrindKindAgreement): valgrind is
/// most of their time. The run sees exactly the environment the tracked runs get, in valgrind's
/// order (programs copy their environment: perl builds %ENV at startup, and how its hash grows
/// depends on the order of the variables): PATH, LC_ALL, HOME and MEM_DIR in a fresh scratch
/// directory, the program's own variables, `MEM_FREERES=0`, `MEM_SETTLE_MS=50`, and an
/// LD_PRELOAD of the tracker's length. valgrind ignores the MEM_* settings; a tracked run swaps
/// in values of the same length (its own scratch directory, `MEM_SETTLE_MS=00` for 0, the
/// tracker's path after extra leading slashes), so the program sees an environment of the same
/// shape.
struct ValgrindReference: Sendable {
    /// The scratch directory of valgrind's run (removed): the tracked run puts its own in its place.
    var root: String
    /// The environment the program got under valgrind, in its order.
    var environment: [String]
    var result: RunResult

    /// The environment for a tracked run in `scratch`, the same shape as valgrind's.
    func trackedEnvironment(_ scratch: Scratch, settleMs: Int?) throws -> [String] {
        let library = try E2E.library()
        let settle = String(settleMs ?? 50)
        try #require(root.count == scratch.root.path.count && settle.count <= 2, "\(root) \(scratch.root.path) \(settle)")
        return environment.map { variable in
            if variable.hasPrefix("LD_PRELOAD=") {
                let length = variable.count - "LD_PRELOAD=".count
                return "LD_PRELOAD=" + String(repeating: "/", count: length - library.count) + library
            }
            if variable == "MEM_SETTLE_MS=50" {
                return "MEM_SETTLE_MS=" + String(repeating: "0", count: 2 - settle.count) + settle
            }
            return variable.replacingOccurrences(of: root, with: scratch.root.path)
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var made: [String: Result<ValgrindReference, HarnessError>] = [:]
    private static let running = NSCondition()
    nonisolated(unsafe) private static var inProgress: Set<String> = []

    /// The reference for `program`, made on first use; a second test asking meanwhile waits for it.
    static func of(_ program: ForeignProgram) throws -> ValgrindReference {
        running.lock()
        while inProgress.contains(program.name) { running.wait() }
        if let done = made[program.name] { running.unlock(); return try done.get() }
        inProgress.insert(program.name)
        running.unlock()
        let result = make(program)
        running.lock()
        made[program.name] = result
        inProgress.remove(program.name)
        running.broadcast()
        running.unlock()
        return try result.get()
    }

    private static func make(_ program: ForeignProgram) -> Result<ValgrindReference, HarnessError> {
        Result {
            guard let valgrind = valgrindPath else { throw HarnessError("valgrind is not installed") }
            guard let valgrindPreload = valgrindOwnPreload else { throw HarnessError("cannot see valgrind's LD_PRELOAD") }
            return try withScratch { scratch in
                if let input = program.input {
                    try Data(input.utf8).write(to: scratch.root.appendingPathComponent("input.txt"))
                }
                var env = ["PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": scratch.root.path]
                env.merge(program.environment) { $1 }
                env["MEM_DIR"] = scratch.memDir.path
                env["MEM_SETTLE_MS"] = "50"
                env["MEM_FREERES"] = "0"
                // valgrind appends ":" + the inherited LD_PRELOAD to its own: the tracker's path,
                // with extra leading slashes, fills the same length.
                let library = try E2E.library()
                let length = max(valgrindPreload.count + 2, library.count)
                env["LD_PRELOAD"] = String(repeating: ":", count: length - valgrindPreload.count - 1)
                guard let ordered = environmentUnderValgrind(valgrind, env, currentDirectory: scratch.root) else {
                    throw HarnessError("valgrind -q /usr/bin/env failed")
                }
                let result = runProgram(valgrind, ["--leak-check=full", "--show-leak-kinds=all", "--run-libc-freeres=no",
                                                   "--run-cxx-freeres=no", program.executable] + program.arguments,
                                        environment: env, currentDirectory: scratch.root, timeout: 300)
                return ValgrindReference(root: scratch.root.path, environment: ordered, result: result)
            }
        }.mapError { $0 as? HarnessError ?? HarnessError("\($0)") }
    }
}

/// "in use at exit: 1,234 bytes in 5 blocks" -> (1234, 5)
func valgrindInUse(_ text: String) -> (bytes: Int, blocks: Int)? {
    guard let line = text.split(separator: "\n").first(where: { $0.contains("in use at exit:") }) else { return nil }
    let tail = line[line.range(of: "in use at exit:")!.upperBound...]
    let words = tail.split(separator: " ").map { $0.replacingOccurrences(of: ",", with: "") }
    guard words.count >= 4, let bytes = Int(words[0]), let blocks = Int(words[3]) else { return nil }
    return (bytes, blocks)
}

extension EndToEnd {
    @Suite(.enabled(if: valgrindPath != nil, "valgrind is not installed (apt-get install valgrind); .ci/run installs it"))
    struct ValgrindAgreement {
        @Test("live blocks and bytes at exit equal valgrind's \"in use at exit\" (MEM_FREERES=0)",
              arguments: foreignPrograms, bothModes)
        func agreement(program: ForeignProgram, settleMs: Int?) throws {
            _ = try #require(valgrindPath)
            try #require(FileManager.default.isExecutableFile(atPath: program.executable), "\(program.executable) missing")
            try withScratch { scratch in
                if let input = program.input {
                    try Data(input.utf8).write(to: scratch.root.appendingPathComponent("input.txt"))
                }
                let valgrind = try ValgrindReference.of(program)
                let reference = valgrind.result
                #expect(reference.exitedNormally && reference.status == 0, "valgrind: \(reference.statusDescription)")
                let inUse = try #require(valgrindInUse(reference.stderrText), "no 'in use at exit' in:\n\(reference.stderrText)")
                let trackedEnv = try valgrind.trackedEnvironment(scratch, settleMs: settleMs)
                #expect(valgrind.environment.map(\.count) == trackedEnv.map(\.count))

                let tracked = runProgram("/usr/bin/env", ["-i"] + trackedEnv + [program.executable] + program.arguments,
                                         environment: [:], currentDirectory: scratch.root)
                #expect(tracked.exitedNormally && tracked.status == 0, "\(tracked.statusDescription) \(tracked.stderrText)")
                #expect(tracked.stdout == reference.stdout, "same output as under valgrind")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.process["settle-ms"] == [String(settleMs ?? 50)])
                #expect(dir.counter("unrecorded-blocks") == 0 && dir.counter("unremoved-records") == 0)
                #expect(dir.blocks.count == inUse.blocks && dir.totalBytes == inUse.bytes,
                        "tracker: \(dir.totalBytes) bytes in \(dir.blocks.count) blocks; valgrind: \(inUse.bytes) bytes in \(inUse.blocks) blocks")

                let report = try listReport(scratch.memDir)
                #expect(report.totalLeakedBlocks == inUse.blocks && report.totalLeakedBytes == inUse.bytes)
            }
        }
    }
}
