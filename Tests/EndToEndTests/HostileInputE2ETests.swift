// HostileInputE2ETests.swift: issue 17 item 14 on a real run directory: FIFOs planted under
// `leak-check` and `counters` (and the other record names) hang no command, and `memdir watch`
// ends promptly on SIGTERM and SIGINT, whatever it is reading.

import Foundation
import MemdirKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite struct HostileInputs {
        /// A real run directory of seeds, said to be still running (so watch does not end by
        /// itself), with FIFOs under `names`.
        func plantedRun(_ scratch: Scratch, fifos names: [String]) throws -> URL {
            let run = try runTracked(try E2E.example("seeds"), [], Tracking(memDir: scratch.memDir))
            #expect(run.exitedNormally)
            let dir = try onlyRunDirectory(scratch.memDir).url
            try "memtrack/1 status\nstate running\nunrecorded-blocks 0\nunremoved-records 0\nunrecorded-events 0\n"
                .write(to: dir.appendingPathComponent("status"), atomically: false, encoding: .utf8)
            for name in names {
                unlink(dir.appendingPathComponent(name).path)
                #expect(mkfifo(dir.appendingPathComponent(name).path, 0o600) == 0)
            }
            return dir
        }

        @Test("FIFOs named leak-check and counters: list, stats and snapshot end with status 5 and say why")
        func fifosDoNotHang() throws {
            try withScratch { scratch in
                let dir = try plantedRun(scratch, fifos: ["leak-check", "counters"])
                for args in [["list", dir.path], ["stats", dir.path], ["snapshot", dir.path, "-o", scratch.root.appendingPathComponent("s.json").path]] {
                    let result = runProgram(try E2E.memdirPath(), args, environment: E2E.cleanEnvironment(), timeout: 20)
                    #expect(!result.timedOut && result.exitedNormally && result.status == 5, "\(args): \(result.statusDescription) \(result.stderrText)")
                    #expect(result.stderrText.contains("not a regular file"), "\(args): \(result.stderrText)")
                }
            }
        }

        @Test("watch over planted FIFOs samples, and dies within 3 s of SIGTERM or SIGINT", arguments: [SIGTERM, SIGINT])
        func watchEndsOnSignal(signal: Int32) throws {
            try withScratch { scratch in
                let dir = try plantedRun(scratch, fifos: ["leak-check", "counters", "stacks"])
                let process = Process()
                process.executableURL = URL(fileURLWithPath: try E2E.memdirPath())
                process.arguments = ["watch", dir.path, "--interval", "20ms"]
                process.environment = E2E.cleanEnvironment()
                let output = Spawn.pipe()
                process.standardOutput = output
                process.standardError = FileHandle.nullDevice
                process.standardInput = FileHandle.nullDevice
                try Spawn.run(process)
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
                // The first line is the event: it sampled (and so got past every planted file).
                let first = output.fileHandleForReading.availableData
                #expect(String(decoding: first, as: UTF8.self).contains("no counters (running)"), "\(String(decoding: first, as: UTF8.self))")
                let sent = Date()
                kill(process.processIdentifier, signal)
                let done = DispatchSemaphore(value: 0)
                DispatchQueue.global().async { process.waitUntilExit(); done.signal() }
                #expect(done.wait(timeout: .now() + 3) == .success, "watch still running 3 s after signal \(signal)")
                #expect(Date().timeIntervalSince(sent) < 3)
            }
        }
    }
}
