// StressTests.swift: the interposer under pressure: threads, fork while threads allocate,
// signals, a program that closes every descriptor, edge calls of the allocation API, and
// addresses handed out again while the pending table is full. The programs are
// Examples/stress/*.c, built here (the Examples Makefile does not know them).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Examples/stress/*.c, compiled once per test process into the build products directory
/// (again only when a source changed).
private enum Stress {
    static let build: Result<URL, HarnessError> = Compile.directory("e2e-stress").flatMap { out in
        let source = E2E.examplesSource.appendingPathComponent("stress")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? [])
            .filter { $0.hasSuffix(".c") }.sorted()
        let steps = names.map { name in
            let output = out.appendingPathComponent(String(name.dropLast(2)))
            return CompileStep(tool: "/usr/bin/env", arguments: ["cc",
                "-g", "-O1", "-fno-omit-frame-pointer", "-Wall", "-Wno-free-nonheap-object",
                "-Wno-alloc-size-larger-than", "-Wno-use-after-free", "-o", output.path,
                source.appendingPathComponent(name).path, "-pthread",
            ], output: output, inputs: [source.appendingPathComponent(name)] + Compile.exampleHeaders)
        }
        if let failure = Compile.run(steps) { return .failure(failure) }
        return .success(out)
    }

    static func program(_ name: String) throws -> String {
        try build.get().appendingPathComponent(name).path
    }
}

/// The `memtrack: warning:` lines of a run.
private func warnings(_ result: RunResult) -> [String] {
    result.stderrLines.filter { $0.hasPrefix("memtrack: warning:") }
}

/// Block sizes per run directory, for a quick look in a failure message.
private func summary(_ dirs: [RunDirectory]) -> String {
    dirs.map { "\($0.name): \($0.blocks.count) blocks, \($0.badFrees.count) bad, status \($0.status)" }
        .joined(separator: "\n")
}

/// A run of a program whose thread t leaks t+1 blocks of firstSize+t bytes and prints "done":
/// exactly those blocks remain, with no bad free and nothing unrecorded or unremoved.
@discardableResult
private func expectOnlyThreadLeaks(_ result: RunResult, _ scratch: Scratch, threads: Int, firstSize: Int) throws -> RunDirectory {
    #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription)")
    #expect(result.stdoutText == "done\n")
    #expect(result.stderr.isEmpty, "\(result.stderrText)")
    let dir = try onlyRunDirectory(scratch.memDir)
    let expected = (0..<threads).flatMap { t in Array(repeating: firstSize + t, count: t + 1) }
    #expect(dir.blockSizes == expected, "\(summary([dir]))")
    #expect(dir.badFrees.isEmpty, "\(dir.badFrees.keys.sorted())")
    #expect(dir.state == "exit" && dir.status["code"] == "0", "\(dir.status)")
    #expect(dir.counter("unrecorded-blocks") == 0 && dir.counter("unremoved-records") == 0)
    return dir
}

/// Settle time and quarantine: deferred and synchronous, with and without the quarantine.
/// The timing-dependent tests here (fork while threads churn, SIGUSR1 storms, _exit from a
/// handler, addresses reused while the table is full) keep MEM_DIR on the disk, where their
/// rates were seen: slower record writes widen the windows they need.
private let stressModes: [(Int?, Int?)] = [(nil, nil), (nil, 0), (0, nil), (0, 0)]

extension EndToEnd {
    @Suite struct Stress_ {
        @Test("threads: cross-thread frees, realloc chains, posix_memalign, calloc; exactly the per-thread leaks remain",
              arguments: stressModes)
        func threads(settleMs: Int?, quarantine: Int?) throws {
            let program = try Stress.program("threads")
            // The synchronous mode writes a file per allocation: fewer iterations keep it short.
            let iterations = settleMs == 0 ? "2000" : "50000"
            for _ in 0..<1 {
                // On tmpfs (Scratch): 16,000 synchronous records cost 0.5 s there, 22 s on this VM's ext4.
                try withScratch { scratch in
                    let result = try runTracked(program, ["8", iterations],
                                                Tracking(memDir: scratch.memDir, settleMs: settleMs, quarantine: quarantine),
                                                timeout: 60)
                    try expectOnlyThreadLeaks(result, scratch, threads: 8, firstSize: 1000)
                }
            }
        }

        @Test("fork while 4 threads churn: no deadlock, every child exits 0 and records only its own 2 leaks",
              arguments: stressModes)
        func forkWhileAllocating(settleMs: Int?, quarantine: Int?) throws {
            let program = try Stress.program("forkchurn")
            try withScratch(onDisk: true) { scratch in
                let result = try runTracked(program, ["20", "4"],
                                            Tracking(memDir: scratch.memDir, settleMs: settleMs, quarantine: quarantine),
                                            timeout: 60)
                #expect(!result.timedOut, "deadlock")
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription) \(result.stderrText)")
                #expect(result.stderr.isEmpty, "\(result.stderrText)")
                let dirs = try runDirectories(scratch.memDir)
                #expect(dirs.count == 21, "\(dirs.map(\.name))")
                for dir in dirs {
                    #expect(dir.badFrees.isEmpty, "false bad frees in \(dir.name): \(dir.badFrees.keys.sorted())")
                    #expect(dir.state == "exit" && dir.status["code"] == "0", "\(dir.name): \(dir.status)")
                    if dir.parent == nil {
                        #expect(dir.blockSizes == [777], "parent: \(dir.blockSizes)")
                    } else {
                        let sizes = dir.blockSizes
                        #expect(sizes.count == 2 && sizes[0] == sizes[1] && (3000..<3020).contains(sizes[0]),
                                "child \(dir.name): \(sizes)")
                    }
                }
            }
        }

        @Test("SIGUSR1 sent 10,000 times while threads allocate: EINTR without SA_RESTART, none with it",
              arguments: bothModes)
        func usr1(settleMs: Int?) throws {
            let program = try Stress.program("signals")
            try withScratch(onDisk: true) { scratch in
                let plain = runPlain(program, ["usr1"], timeout: 60)
                let tracked = try runTracked(program, ["usr1"], Tracking(memDir: scratch.memDir, settleMs: settleMs), timeout: 60)
                #expect(plain.exitedNormally && plain.status == 0, "\(plain.stdoutText)")
                #expect(tracked.exitedNormally && tracked.status == 0, "\(tracked.statusDescription) \(tracked.stdoutText)")
                #expect(tracked.stdout == plain.stdout)
                #expect(tracked.stderr.isEmpty, "\(tracked.stderrText)")
            }
        }

        @Test("SIGPIPE ignored: a write to a closed pipe fails with EPIPE", arguments: bothModes)
        func pipeIgnored(settleMs: Int?) throws {
            let program = try Stress.program("signals")
            try withScratch { scratch in
                let tracked = try runTracked(program, ["pipe"], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(tracked.exitedNormally && tracked.status == 0, "\(tracked.statusDescription)")
                #expect(tracked.stdoutText == "write: -1 Broken pipe\n")
            }
        }

        @Test("sigaction(SIG, NULL, &old) shows exactly what it shows without the tracker (SIG_DFL, flags 0, empty mask)")
        func sigactionQuery() throws {
            let program = try Stress.program("signals")
            try withScratch { scratch in
                // What the program inherits decides what it sees (a CI runner may start it with
                // SIGPIPE ignored): the tracked run must see exactly what the plain run sees.
                let plain = runPlain(program, ["query"])
                let tracked = try runTracked(program, ["query"], Tracking(memDir: scratch.memDir))
                #expect(plain.exitedNormally, "\(plain.stdoutText)")
                #expect(plain.stdoutText.contains("SIGSEGV: SIG_DFL flags=0 mask=empty"))
                #expect(tracked.stdoutText == plain.stdoutText)
                #expect(tracked.exitedNormally && tracked.status == plain.status, "\(tracked.statusDescription)")
            }
        }

        @Test("SIGTERM to an idle program: dies by SIGTERM, status says so, its 3 leaks are on disk",
              arguments: bothModes)
        func sigterm(settleMs: Int?) throws {
            let program = try Stress.program("signals")
            try withScratch { scratch in
                var env = E2E.cleanEnvironment()
                try Tracking(memDir: scratch.memDir, settleMs: settleMs).apply(to: &env)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: program)
                process.arguments = ["idle"]
                process.environment = env
                process.currentDirectoryURL = scratch.root
                let out = Spawn.pipe()
                process.standardOutput = out
                process.standardError = FileHandle.nullDevice
                try Spawn.run(process)
                let ready = out.fileHandleForReading.availableData   // "ready\n" once its leaks are made
                #expect(String(decoding: ready, as: UTF8.self) == "ready\n")
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM,
                        "\(process.terminationReason) \(process.terminationStatus)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.state == "signal" && dir.status["signal"] == "15" && dir.status["signal-name"] == "SIGTERM",
                        "\(dir.status)")
                // 100, 200, 300 and stdout's buffer (no exit, so no freeres).
                #expect(dir.blockSizes.filter { $0 != 4096 } == [100, 200, 300], "\(dir.blockSizes)")
            }
        }

        @Test("_exit from a signal handler that interrupted malloc/free: no deadlock", arguments: stressModes)
        func exitFromHandler(settleMs: Int?, quarantine: Int?) throws {
            let program = try Stress.program("signals")
            // The handler lands inside the tracker's critical sections about half the time.
            for attempt in 0..<12 {
                let outcome = try withScratch(onDisk: true) { scratch in
                    try runTracked(program, ["exithandler"],
                                   Tracking(memDir: scratch.memDir, settleMs: settleMs, quarantine: quarantine),
                                   timeout: 3)
                }
                #expect(!outcome.timedOut && outcome.exitedNormally && outcome.status == 7,
                        "attempt \(attempt): \(outcome.statusDescription)")
                if outcome.timedOut { break }
            }
        }

        @Test("daemon closing every descriptor (ulimit -n 64): nothing written outside MEM_DIR, its files intact",
              arguments: bothModes)
        func daemonLowLimit(settleMs: Int?) throws {
            try daemon(settleMs: settleMs, limit: 64)
        }

        @Test("daemon closing every descriptor (default limit): no crash, its files intact, at most one warning",
              arguments: bothModes)
        func daemonDefaultLimit(settleMs: Int?) throws {
            try daemon(settleMs: settleMs, limit: nil)
        }

        private func daemon(settleMs: Int?, limit: Int?) throws {
            let program = try Stress.program("daemon")
            let script = (limit.map { "ulimit -n \($0) || exit 99; " } ?? "")
                + "export LD_PRELOAD=\"$E2E_PRELOAD\"; exec \"$0\" \"$1\""
            try withScratch { scratch in
                let files = scratch.root.appendingPathComponent("files")
                try FileManager.default.createDirectory(at: files.appendingPathComponent("datadir"),
                                                        withIntermediateDirectories: true)
                var env = E2E.cleanEnvironment()
                try Tracking(memDir: scratch.memDir, settleMs: settleMs).apply(to: &env)
                env["E2E_PRELOAD"] = env.removeValue(forKey: "LD_PRELOAD")
                let result = runProgram("/bin/sh", ["-c", script, program, files.path], environment: env,
                                        currentDirectory: scratch.root, timeout: 30)
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription) \(result.stderrText)")
                #expect(result.stdoutText == "fds 3 4 5\n")
                #expect(warnings(result).count <= 1, "\(result.stderrText)")
                let log = try String(contentsOf: files.appendingPathComponent("log"), encoding: .utf8)
                let data = try String(contentsOf: files.appendingPathComponent("data"), encoding: .utf8)
                #expect(log == "daemon: started\n")
                #expect(data == "data\n", "the program's data file was overwritten: \(data.prefix(40))")
                let stray = try FileManager.default.contentsOfDirectory(atPath: files.appendingPathComponent("datadir").path)
                #expect(stray.isEmpty, "records written into the program's directory: \(stray.prefix(5))")
            }
        }

        @Test("edge calls: malloc(0), realloc(p, 0), realloc(NULL, 0), huge and bad-alignment failures, errno, invalid frees",
              arguments: stressModes)
        func edgeCalls(settleMs: Int?, quarantine: Int?) throws {
            let program = try Stress.program("edge")
            try withScratch { scratch in
                let result = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs, quarantine: quarantine))
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription)\n\(result.stdoutText)")
                #expect(!result.stdoutText.contains("FAIL"), "\(result.stdoutText)")
                let lines = result.stderrLines
                #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("memtrack: invalid free of ") }, "\(lines)")
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blockSizes == [0, 0, 512], "malloc(0), realloc(NULL, 0), aligned_alloc: \(summary([dir]))")
                #expect(dir.badFrees.count == 2 && dir.badFrees.values.allSatisfy { $0.kind == "invalid-free" },
                        "\(dir.badFrees.values.map(\.kind))")
                let vias = dir.blocks.values.compactMap { $0.fields["via"] }.sorted()
                #expect(vias == ["aligned_alloc", "malloc", "realloc"], "\(vias)")
                #expect(dir.state == "exit" && dir.status["code"] == "0")
            }
        }

        /// The backlog's events (pending.c): blocks moved out of the young table and frees of them,
        /// from four threads, each freeing the blocks another thread made; with records written
        /// and removed (odd rounds outlive the settle time, and MEM_SETTLE_BACKLOG_MS=0 does not
        /// hold them back), addresses handed out again at once (no quarantine), and a backlog
        /// budget of two shards' tables, so that applying the events writes records. Each case
        /// must leave exactly the deliberate leaks.
        @Test("blocks past the young table freed by other threads while their events wait: exactly the leaks remain",
              arguments: [
                  ["MEM_SETTLE_BACKLOG_MS": "0"],
                  ["MEM_SETTLE_BACKLOG_MS": "0", "MEM_QUARANTINE": "0"],
                  ["MEM_SETTLE_BACKLOG_MS": "0", "MEM_QUARANTINE": "0", "MEM_BACKLOG": "65536"],
              ])
        func backlogEvents(settings: [String: String]) throws {
            let program = try Stress.program("backlogchurn")
            try withScratch { scratch in
                let result = try runTracked(program, ["4", "6"], Tracking(memDir: scratch.memDir),
                                            extraEnvironment: settings, timeout: 60)
                let dir = try expectOnlyThreadLeaks(result, scratch, threads: 4, firstSize: 2000)
                // The records were written and removed during the run, not only at exit.
                #expect((dir.counter("writer-records") ?? 0) > 1000, "\(dir.status)")
            }
        }

        @Test("addresses handed out again while the pending table is full: every leak keeps its file",
              arguments: [nil, 0] as [Int?])
        func reusedAddresses(quarantine: Int?) throws {
            let program = try Stress.program("reuse")
            try withScratch(onDisk: true) { scratch in
                let result = try runTracked(program, ["10000", "4"], Tracking(memDir: scratch.memDir, quarantine: quarantine),
                                            timeout: 60)
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription)")
                let dir = try onlyRunDirectory(scratch.memDir)
                let leaks = dir.blockSizes.filter { $0 == 48 }.count
                #expect(leaks == 10000, "\(10000 - leaks) leaks of 48 bytes lost their record")
                #expect(dir.badFrees.isEmpty)
            }
        }
    }
}
