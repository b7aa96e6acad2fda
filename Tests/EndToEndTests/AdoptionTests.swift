// AdoptionTests.swift: the first minute with memdir, as with valgrind: which processes are traced
// (--trace-children), JSON that a parser reads whatever the program prints (--json-fd), nothing
// left behind (a clean run removes its directory; memdir clean), --binary checked against the
// recorded build-id, colour on a terminal, one number format, and memtrack.h included first.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The processes of a `memdir-report/2` document: (exe, leak locations with their kinds).
private func processes(_ json: [String: Any]) -> [(exe: String, leaks: [(kind: String, location: String)])] {
    ((json["processes"] as? [[String: Any]]) ?? []).map { p in
        let exe = (p["exe"] as? String) ?? ((p["process"] as? [String: Any])?["exe"] as? String) ?? "?"
        let leaks = ((p["leaks"] as? [[String: Any]]) ?? []).map { ($0["kind"] as? String ?? "?", $0["location"] as? String ?? "?") }
        return (exe, leaks)
    }
}

/// `memdir run ARGS -- sh -c SCRIPT` with the JSON report in a file; the result and the report.
private func runShell(_ options: [String], _ script: String, in scratch: Scratch,
                      environment: [String: String] = [:]) throws -> (RunResult, [String: Any]) {
    let jsonFile = scratch.root.appendingPathComponent("report-\(UUID().uuidString).json")
    var env = E2E.cleanEnvironment()
    env["TMPDIR"] = scratch.root.path   // the directories of failed runs are kept: in the scratch, not /dev/shm
    env.merge(environment) { $1 }
    let run = runProgram(try E2E.memdirPath(), ["run", "--json-file", jsonFile.path] + options + ["--", "/bin/sh", "-c", script],
                         environment: env, currentDirectory: scratch.root)
    let data = try Data(contentsOf: jsonFile)
    let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return (run, json)
}

extension EndToEnd {
    @Suite struct Adoption {
        @Test("--trace-children=no (the default) traces the program only, through its own execs; yes traces children; -skip prunes a subtree")
        func traceChildren() throws {
            let leaky = try E2E.example("header_first")
            let leakLine = try location("header_first.c", "FIRST-MALLOC")
            try withScratch { scratch in
                // The shell runs the leaky program as a child: not traced, so the run passes.
                let (plain, plainJSON) = try runShell([], "\(leaky) >/dev/null; true", in: scratch)
                #expect(plain.exitedNormally && plain.status == 0, "\(plain.statusDescription)\n\(plain.stderrText)")
                let traced = processes(plainJSON)
                #expect(traced.count == 1, "\(traced.map(\.exe))")
                #expect(!traced.contains { $0.exe.hasSuffix("header_first") })
                #expect(plain.stderrText.contains("memdir: traced 1 process (children are not traced: --trace-children=yes)\n"),
                        "\(plain.stderrText)")
                #expect(plain.stderrText.contains("--trace-children=yes"), "\(plain.stderrText)")

                // yes: the child is traced, and its leak fails the run at its line.
                let (all, allJSON) = try runShell(["--trace-children=yes"], "\(leaky) >/dev/null; true", in: scratch)
                #expect(all.exitedNormally && all.status == 23, "\(all.statusDescription)\n\(all.stderrText)")
                let child = try #require(processes(allJSON).first { $0.exe.hasSuffix("/header_first") })
                #expect(child.leaks.contains { $0.kind == "definitely_lost" && frame($0.location, isAt: leakLine) }, "\(child.leaks)")
                #expect(all.stderrText.contains("memdir: traced 2 processes (--trace-children-skip=PATTERNS or --trace-children=no narrows it)"),
                        "\(all.stderrText)")

                // -skip: matched by the last path component, and the program is never skipped.
                let (skipped, skippedJSON) = try runShell(["--trace-children=yes", "--trace-children-skip=nothing,header_*"],
                                                          "\(leaky) >/dev/null; true", in: scratch)
                #expect(skipped.exitedNormally && skipped.status == 0, "\(skipped.statusDescription)\n\(skipped.stderrText)")
                #expect(processes(skippedJSON).map(\.exe).allSatisfy { !$0.hasSuffix("header_first") })
                #expect(processes(skippedJSON).count == 1)

                // exec in place (a version manager's shim): still the program, still traced.
                let (shim, shimJSON) = try runShell([], "exec \(leaky) >/dev/null", in: scratch)
                #expect(shim.exitedNormally && shim.status == 23, "\(shim.statusDescription)\n\(shim.stderrText)")
                #expect(processes(shimJSON).contains { $0.exe.hasSuffix("/header_first") && $0.leaks.contains { frame($0.location, isAt: leakLine) } })
            }
        }

        @Test("an untraced child runs as untraced: a double free in it is glibc's to catch, and LD_PRELOAD no longer names the tracker")
        func untracedChildIsUntouched() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                let untraced = runPlain("/bin/sh", ["-c", "\(seeds) >/dev/null 2>&1; echo status $?"])
                let (run, _) = try runShell([], "\(seeds) >/dev/null 2>&1; echo status $?; env | grep '^LD_PRELOAD='", in: scratch)
                let lines = run.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines.first == untraced.stdoutText.split(separator: "\n").first.map(String.init), "\(run.stdoutText) vs \(untraced.stdoutText)")
                #expect(lines.dropFirst().first == "LD_PRELOAD=", "\(run.stdoutText)")
            }
        }

        @Test("run --json is refused with a hint; --json-fd writes only JSON to its descriptor; a closed descriptor fails first")
        func jsonOutput() throws {
            let leaky = try E2E.example("header_first")
            let refused = try memdir(["run", "--json", "--", leaky])
            #expect(refused.exitedNormally && refused.status == 2)
            #expect(refused.stderrText == "memdir: error: run --json would mix the report with the program's stdout; use --json-file FILE or --json-fd N (see memdir run --help)\n")
            try withScratch { scratch in
                // The program prints to stdout; `3>&1 1>/dev/null` gives the pipe only the report.
                let run = runProgram("/bin/sh", ["-c", "\"$0\" run --dir \"$1\" --json-fd 3 -- \"$2\" 3>&1 1>/dev/null 2>/dev/null",
                                                 try E2E.memdirPath(), scratch.memDir.path, leaky],
                                     environment: E2E.cleanEnvironment(), currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)")
                let json = try parseJSON(run)
                #expect(json["schema"] as? String == "memdir-report/2")
                let leaks = processes(json).flatMap(\.leaks)
                #expect(leaks.contains { $0.kind == "definitely_lost" && frame($0.location, isAt: (try? location("header_first.c", "FIRST-MALLOC")) ?? "?") })

                // A descriptor far above any the test process has open (tests run in parallel).
                let closed = try memdir(["run", "--dir", scratch.root.appendingPathComponent("unused").path, "--json-fd", "999", "--", leaky])
                #expect(closed.exitedNormally && closed.status == 11, "\(closed.statusDescription)")
                #expect(closed.stderrText == "memdir: error: cannot write --json-fd 999: descriptor 999 is not open\n")
                #expect(!FileManager.default.fileExists(atPath: scratch.root.appendingPathComponent("unused").path), "nothing ran")
            }
        }

        @Test("a clean run removes the directory it made; a run that found something keeps it and says where; --keep keeps")
        func recordsDirectoryLifetime() throws {
            let clean = try E2E.example("alloc_kinds")
            let leaky = try E2E.example("header_first")
            try withScratch { scratch in
                var env = E2E.cleanEnvironment()
                env["TMPDIR"] = scratch.root.path
                func runs() -> [String] {
                    ((try? FileManager.default.contentsOfDirectory(atPath: scratch.root.path)) ?? []).filter { $0.hasPrefix("memdir-run-") }.sorted()
                }
                let passed = runProgram(try E2E.memdirPath(), ["run", "--errors-for-leak-kinds", "none", "--show-leak-kinds", "none", "--", "/bin/true"],
                                        environment: env, currentDirectory: scratch.root)
                #expect(passed.exitedNormally && passed.status == 0, "\(passed.statusDescription)\n\(passed.stderrText)")
                #expect(runs().isEmpty, "\(runs())")
                #expect(!passed.stderrText.contains("records kept"))

                let failed = runProgram(try E2E.memdirPath(), ["run", "--", leaky], environment: env, currentDirectory: scratch.root)
                #expect(failed.exitedNormally && failed.status == 23)
                let kept = runs()
                #expect(kept.count == 1)
                #expect(failed.stderrText.contains("memdir: records kept in \(scratch.root.path)/\(kept.first ?? "?")\n"), "\(failed.stderrText)")

                let keep = runProgram(try E2E.memdirPath(), ["run", "--keep", "--", "/bin/true"], environment: env, currentDirectory: scratch.root)
                #expect(keep.exitedNormally && keep.status == 0, "\(keep.stderrText)")
                #expect(runs().count == 2)
                _ = clean
            }
        }

        @Test("memdir clean removes the directories run kept, and never one it did not make, one in use, or one of another user")
        func clean() throws {
            let leaky = try E2E.example("header_first")
            try withScratch { scratch in
                var env = E2E.cleanEnvironment()
                env["TMPDIR"] = scratch.root.path
                let fm = FileManager.default
                // Two kept by run.
                for _ in 0..<2 {
                    let r = runProgram(try E2E.memdirPath(), ["run", "--", leaky], environment: env, currentDirectory: scratch.root)
                    #expect(r.status == 23, "\(r.stderrText)")
                }
                let made = try fm.contentsOfDirectory(atPath: scratch.root.path).filter { $0.hasPrefix("memdir-run-") }
                #expect(made.count == 2)
                // Named like one, but a user's own directory.
                let foreign = scratch.root.appendingPathComponent("memdir-run-Abc123")
                try fm.createDirectory(at: foreign, withIntermediateDirectories: false)
                try Data("mine\n".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
                // Made by run, but its memdir is still running (this test process stands in for it).
                let inUse = scratch.root.appendingPathComponent("memdir-run-Use123")
                try fm.createDirectory(at: inUse, withIntermediateDirectories: false)
                try Data("memdir run \(getpid())\n".utf8).write(to: inUse.appendingPathComponent(".memdir-run"))
                // Made by run, but owned by another user.
                let other = scratch.root.appendingPathComponent("memdir-run-Oth123")
                try fm.createDirectory(at: other, withIntermediateDirectories: false)
                try Data("memdir run 999999999\n".utf8).write(to: other.appendingPathComponent(".memdir-run"))
                let otherOwned = getuid() == 0 && chown(other.path, 65534, 65534) == 0

                let dry = runProgram(try E2E.memdirPath(), ["clean", "--dry-run", scratch.root.path], environment: env)
                #expect(dry.exitedNormally && dry.status == 0, "\(dry.stderrText)")
                #expect(dry.stdoutText.hasSuffix("would remove 2 records directories, kept 1 in use\n") || !otherOwned, "\(dry.stdoutText)")
                #expect(try fm.contentsOfDirectory(atPath: scratch.root.path).filter { $0.hasPrefix("memdir-run-") }.count == 5)

                let cleaned = runProgram(try E2E.memdirPath(), ["clean", scratch.root.path], environment: env)
                #expect(cleaned.exitedNormally && cleaned.status == 0, "\(cleaned.stderrText)")
                let left = Set(try fm.contentsOfDirectory(atPath: scratch.root.path).filter { $0.hasPrefix("memdir-run-") })
                #expect(left.isDisjoint(with: made), "\(left)")
                #expect(left.contains("memdir-run-Abc123") && left.contains("memdir-run-Use123"))
                if otherOwned { #expect(left.contains("memdir-run-Oth123")) }
                #expect(fm.fileExists(atPath: foreign.appendingPathComponent("notes.txt").path))
                #expect(cleaned.stderrText.contains("memdir: keeping \(inUse.path): memdir (pid \(getpid())) is still running"), "\(cleaned.stderrText)")
            }
        }

        @Test("modules record each module's build-id; --binary must be the program that ran (16 when missing, 17 when another build)")
        func binaryBuildID() throws {
            let seeds = try E2E.example("seeds")
            try withScratch { scratch in
                _ = try runTracked(seeds, [], Tracking(memDir: scratch.memDir))
                let dir = try onlyRunDirectory(scratch.memDir)
                let modules = try String(contentsOf: dir.url.appendingPathComponent("modules"), encoding: .utf8)
                let line = try #require(modules.split(separator: "\n").first { $0.hasSuffix(" path=\(seeds)") })
                // readelf (binutils) says what the build-id is.
                let readelf = runPlain("/usr/bin/env", ["readelf", "-n", seeds])
                let id = try #require(readelf.stdoutText.split(separator: "\n").first { $0.contains("Build ID:") }?
                    .split(separator: " ").last.map(String.init))
                #expect(line.contains(" build-id=\(id) "), "\(line)")

                let missing = try memdir(["resolve", scratch.memDir.path, "--binary", "/nonexistent/seeds"])
                #expect(missing.exitedNormally && missing.status == 16)
                #expect(missing.stderrText == "memdir: error: cannot read --binary /nonexistent/seeds: no such file or directory\n")

                let other = try E2E.example("header_first")
                let wrong = try memdir(["resolve", scratch.memDir.path, "--binary", other])
                #expect(wrong.exitedNormally && wrong.status == 17)
                #expect(wrong.stderrText.hasPrefix("memdir: error: --binary \(other) is not the program that ran: its build-id is "), "\(wrong.stderrText)")
                #expect(wrong.stderrText.contains("\(seeds) had \(id)"), "\(wrong.stderrText)")
                #expect(wrong.stdoutText.isEmpty)

                let forced = try memdir(["resolve", scratch.memDir.path, "--binary", other, "--ignore-build-id"])
                #expect(forced.exitedNormally && forced.status == 0, "\(forced.stderrText)")

                // The split debug file of the same build has the same build-id: accepted.
                let right = try memdir(["resolve", scratch.memDir.path, "--binary", try E2E.example("seeds.debug")])
                #expect(right.exitedNormally && right.status == 0, "\(right.stderrText)")
                #expect(right.stdoutText.contains("seeds.c:\(try sourceLine("seeds.c", "LEAK: p3"))"), "\(right.stdoutText)")

                let runMissing = try memdir(["run", "--binary", "/nonexistent/seeds", "--", seeds])
                #expect(runMissing.exitedNormally && runMissing.status == 16, "before the program runs: \(runMissing.stderrText)")
                #expect(!runMissing.stderrText.contains("double free"), "\(runMissing.stderrText)")
            }
        }

        @Test("colour: always and never, auto on a terminal (script's pty) but not with NO_COLOR or through a pipe")
        func color() throws {
            let leaky = try E2E.example("header_first")
            try withScratch { scratch in
                _ = try runTracked(leaky, [], Tracking(memDir: scratch.memDir))
                let esc = "\u{1B}["
                let always = try memdir(["list", scratch.memDir.path, "--color=always"])
                #expect(always.stdoutText.contains("\(esc)1;31mdefinitely lost\(esc)0m"), "\(always.stdoutText)")
                #expect(always.stdoutText.contains("\(esc)1mLEAK SUMMARY (1 process):\(esc)0m"))
                let never = try memdir(["list", scratch.memDir.path, "--color=never"])
                #expect(!never.stdoutText.contains(esc))
                let piped = try memdir(["list", scratch.memDir.path])
                #expect(!piped.stdoutText.contains(esc), "auto through a pipe")
                let bad = try memdir(["list", scratch.memDir.path, "--color=sometimes"])
                #expect(bad.status == 2 && bad.stderrText.contains("invalid value 'sometimes' for '--color' (expected auto, always or never)"))

                // A real terminal: util-linux's script runs memdir on a pty.
                var env = E2E.cleanEnvironment()
                env["TERM"] = "xterm"
                env["NO_COLOR"] = nil   // the test runner's own setting, if it has one
                let command = "\(try E2E.memdirPath()) list \(scratch.memDir.path)"
                let tty = runProgram("/usr/bin/script", ["-qec", command, "/dev/null"], environment: env)
                #expect(tty.stdoutText.contains("\(esc)1;31mdefinitely lost"), "\(tty.stdoutText)")
                env["NO_COLOR"] = "1"
                let noColor = runProgram("/usr/bin/script", ["-qec", command, "/dev/null"], environment: env)
                #expect(noColor.stdoutText.contains("definitely lost") && !noColor.stdoutText.contains("\(esc)1;31m"), "\(noColor.stdoutText)")
            }
        }

        @Test("one number format: counts of a thousand and more are grouped everywhere in the text report")
        func numberFormat() throws {
            let manylive = try E2E.example("manylive")
            try withScratch { scratch in
                _ = try runTracked(manylive, ["1500"], Tracking(memDir: scratch.memDir))
                let listed = try memdir(["list", scratch.memDir.path, "--show-leak-kinds", "all"])
                let resolved = try memdir(["resolve", scratch.memDir.path, "--show-leak-kinds", "all"])
                for text in [listed.stdoutText, resolved.stdoutText] {
                    #expect(text.contains("1,500"), "\(text)")
                    // No count of four or more digits without its comma (pids are names, not counts).
                    let counts = text.split(separator: "\n").filter { !$0.hasPrefix("process ") }.joined(separator: "\n")
                    let bare = counts.split(whereSeparator: { !$0.isNumber && $0 != "," && !$0.isLetter })
                        .filter { $0.count >= 4 && $0.allSatisfy(\.isNumber) }
                    #expect(bare.isEmpty, "ungrouped numbers \(bare) in:\n\(text)")
                }
                #expect(resolved.stdoutText.contains("1,500 blocks"), "\(resolved.stdoutText)")
            }
        }

        @Test("memtrack.h with MEMTRACK_SOURCE_LOCATIONS may come before <stdlib.h>: it compiles, and names the lines")
        func headerFirst() throws {
            let program = try E2E.example("header_first")   // built without -g by Examples/Makefile
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0 && run.stdoutText == "header first\n", "\(run.stderrText)")
                let json = try parseJSON(try memdir(["list", scratch.memDir.path, "--json", "--show-leak-kinds", "all"]))
                let leaks = processes(json).flatMap(\.leaks).map { "\($0.kind) \($0.location)" }.sorted()
                #expect(leaks == ["definitely_lost " + (try annotatedAt("main", "FIRST-MALLOC", file: "header_first.c")),
                                  "still_reachable " + (try annotatedAt("main", "FIRST-STRDUP", file: "header_first.c"))], "\(leaks)")
            }
        }
    }
}
