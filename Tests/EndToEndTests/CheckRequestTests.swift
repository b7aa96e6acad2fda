// CheckRequestTests.swift: `memdir check` of a process that allocates nothing between checks
// (issue 17, item 13), and of a run directory its owner swapped for a symbolic link (item 19).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite struct CheckRequests {
        /// Item 13: the answer was named after the sequence number, which an idle process does not
        /// advance: the second check's answer overwrote the first's, and memdir, waiting for a name
        /// it had not seen, timed out (exit 15). Three checks in a row, each answered by a file of
        /// its own, each with the same three reachable blocks.
        @Test func checksInARowOfAnIdleProcess() throws {
            let program = try E2E.example("idle")
            try withScratch { scratch in
                let idle = try LiveProgram(program, ["60"], tracking: Tracking(memDir: scratch.memDir))
                defer { idle.kill9() }
                #expect(try idle.readLine() == "ready")
                var answers: [String] = []
                var seqs: [Int] = []
                for round in 0..<3 {
                    let run = try memdir(["check", String(idle.pid), "--json", "--show-leak-kinds", "all", "--timeout", "5s"])
                    #expect(run.exitedNormally && run.status == 0, "check \(round + 1): \(run.statusDescription) \(run.stderrText)")
                    guard run.status == 0 else { continue }
                    let json = try parseJSON(run)
                    let checks = try #require(json["checks"] as? [[String: Any]])
                    try #require(checks.count == 1)
                    #expect(checks[0]["result"] as? String == "complete", "\(checks[0])")
                    answers.append(checks[0]["answer"] as? String ?? "")
                    seqs.append((checks[0]["seq"] as? NSNumber)?.intValue ?? -1)
                    let report = try reportView(try #require(json["report"] as? [String: Any]))
                    let idleBlocks = report.leaks.filter { $0.kind == "still_reachable" }.map(\.bytes).reduce(0, +)
                    #expect(idleBlocks >= 4001 + 4002 + 4003, "round \(round + 1): \(report.leaks)")
                }
                #expect(answers.count == 3 && Set(answers).count == 3, "\(answers)")
                #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "\(seqs)")
                for answer in answers { #expect(FileManager.default.fileExists(atPath: answer), "\(answer)") }
                // --color, as list and run take it (check took it and ignored it).
                let esc = "\u{1B}["
                let colored = try memdir(["check", String(idle.pid), "--color=always", "--timeout", "5s"])
                #expect(colored.status == 0 && colored.stdoutText.contains("\(esc)1mLEAK SUMMARY (1 process):\(esc)0m"), "\(colored.stdoutText)")
                let plain = try memdir(["check", String(idle.pid), "--color=never", "--timeout", "5s"])
                #expect(plain.status == 0 && plain.stdoutText.contains("LEAK SUMMARY (1 process):") && !plain.stdoutText.contains(esc),
                        "\(plain.stdoutText)")
            }
        }

        /// Item 19: the target's owner swaps a symbolic link in for its run directory, pointing at
        /// a directory it cannot write. `memdir check DIR` unlinked and created files there (as root
        /// it would write anywhere). Now refused (exit 3) and the victim is untouched; a real
        /// directory that does not belong to the process's owner is refused too.
        @Test func symlinkedRunDirectoryIsRefused() throws {
            let program = try E2E.example("idle")
            try withScratch { scratch in
                let idle = try LiveProgram(program, ["60"], tracking: Tracking(memDir: scratch.memDir))
                defer { idle.kill9() }
                #expect(try idle.readLine() == "ready")
                let run = try onlyRunDirectory(scratch.memDir).url
                let moved = scratch.memDir.appendingPathComponent("moved")
                try FileManager.default.moveItem(at: run, to: moved)
                let victim = scratch.root.appendingPathComponent("victim")
                try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
                try Data("memtrack/1 check-request\n".utf8).write(to: victim.appendingPathComponent("check-request"))
                try Data("memtrack/1 process\npid \(idle.pid)\n".utf8).write(to: victim.appendingPathComponent("process"))
                try Data("memtrack/1 status\nstate running\n".utf8).write(to: victim.appendingPathComponent("status"))
                let before = try FileManager.default.contentsOfDirectory(atPath: victim.path).sorted()
                try FileManager.default.createSymbolicLink(at: run, withDestinationURL: victim)

                let refused = try memdir(["check", run.path, "--timeout", "2s"])
                #expect(refused.status == 3, "\(refused.statusDescription) \(refused.stderrText)")
                #expect(refused.stderrText.contains("it is a symbolic link; refused"), "\(refused.stderrText)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: victim.path).sorted() == before)

                // The real directory back, but owned by someone else than the process's owner.
                try FileManager.default.removeItem(at: run)
                try FileManager.default.moveItem(at: moved, to: run)
                if getuid() == 0 {
                    #expect(chown(run.path, 65534, 65534) == 0)
                    let foreign = try memdir(["check", run.path, "--timeout", "2s"])
                    #expect(foreign.status == 3, "\(foreign.statusDescription) \(foreign.stderrText)")
                    #expect(foreign.stderrText.contains("it belongs to uid 65534, not to uid 0"), "\(foreign.stderrText)")
                    #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("check-request").path))
                    #expect(chown(run.path, 0, 0) == 0)
                }
                // And the genuine directory is answered.
                let answered = try memdir(["check", run.path, "--timeout", "5s"])
                #expect(answered.status == 0, "\(answered.statusDescription) \(answered.stderrText)")
            }
        }
    }
}
