// HTMLReportHabitsTests.swift: `memdir report --html` (issue 16, part 3): after exit the icicle
// holds every live block (still reachable ones too) and says so, the chart's legend names
// groups as the rest of the page does (function file:line), and a short `watch --json` history
// is drawn, or the page says precisely what it lacks. Checked in the page's data and, for the
// drawn icicle, in a real browser.

import Foundation
import MemdirKit
import Testing

/// The icicle's data in a report page.
func flameData(_ html: String) throws -> [String: Any] {
    let start = try #require(html.range(of: "<script type=\"application/json\" id=\"flame-data\">"))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    return try #require(try JSONSerialization.jsonObject(with: Data(html[start.upperBound..<end.lowerBound].utf8)) as? [String: Any])
}

/// The inner HTML of the element with `id`, up to its closing tag (no element of the same tag
/// nested in it).
func element(_ id: String, in html: String) -> String? {
    guard let open = html.range(of: " id=\"\(id)\">") else { return nil }
    let tag = (html[..<open.lowerBound].components(separatedBy: "<").last ?? "").prefix { $0 != " " }
    guard let close = html.range(of: "</\(tag)>", range: open.upperBound..<html.endIndex) else { return nil }
    return String(html[open.upperBound..<close.lowerBound])
}

/// The legend's entries, as their text.
func legend(_ html: String) -> [String] {
    guard let list = html.components(separatedBy: "<ul class=\"legend\">").dropFirst().first?.components(separatedBy: "</ul>").first else { return [] }
    return list.components(separatedBy: "<li>").dropFirst().map { item in
        String(item.components(separatedBy: "</span>").last!.prefix { $0 != "<" })
    }
}

extension EndToEnd {
    @Suite("HTML report habits")
    struct HTMLReportHabitsTests {
        @Test("after exit the icicle holds the still reachable blocks beside the lost ones, by kind, and says so; drawn so in a real browser",
              .enabled(if: EndToEnd.LongRunning.chromium != nil, "chromium is not installed (apt-get install chromium; .ci/run does)"))
        func afterExitIcicleHoldsEveryLiveBlock() throws {
            let browser = try #require(EndToEnd.LongRunning.chromium)
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow"), lose = try location("server.c", "SERVER: lose")
            try withScratch { scratch in
                // grow keeps blocks reachable from a global; lose drops them; end of input ends the
                // server without freeing what grow kept.
                var env = E2E.cleanEnvironment()
                try Tracking(memDir: scratch.memDir).apply(to: &env)
                let ran = runProgram(program, [], environment: env, stdin: Data("grow 10 100\nlose 3 77\n".utf8))
                #expect(ran.status == 0 && ran.stdoutText == "ready\ngrew 10\nlost\n", "\(ran.stdoutText)")
                let all = try resolveReport(scratch.memDir)
                func total(_ kind: String) -> (blocks: Int, bytes: Int) {
                    let groups = all.leaks.filter { $0.kind == kind }
                    return (groups.reduce(0) { $0 + $1.blocks }, groups.reduce(0) { $0 + $1.bytes })
                }
                let reachable = total("still_reachable"), definite = total("definitely_lost")
                #expect(definite.blocks == 3 && definite.bytes == 231 && all.leaks(at: lose).map(\.blocks) == [3])
                #expect(reachable.blocks >= 11 && all.leaks(at: grow).map(\.bytes) == [1000], "the 10 kept blocks and the index: \(reachable)")
                #expect(all.leaks.allSatisfy { $0.kind == "still_reachable" || $0.kind == "definitely_lost" })

                let page = scratch.root.appendingPathComponent("exit.html").path
                let made = try memdir(["report", scratch.memDir.path, "--html", page])
                #expect(made.status == 0, "\(made.stderrText)")
                let html = try String(contentsOfFile: page, encoding: .utf8)
                let root = try flameData(html)
                #expect(root["n"] as? String == "all live blocks")
                #expect(root["v"] as? Int == reachable.bytes + definite.bytes && root["b"] as? Int == reachable.blocks + definite.blocks, "\(root["v"] ?? "?")")
                let process = try #require((root["c"] as? [[String: Any]])?.first)
                let kinds = (process["c"] as? [[String: Any]] ?? []).map { ($0["n"] as? String ?? "?", $0["b"] as? Int ?? -1, $0["v"] as? Int ?? -1) }
                #expect(kinds.map(\.0) == ["still reachable", "definitely lost"] && kinds.map(\.1) == [reachable.blocks, definite.blocks]
                        && kinds.map(\.2) == [reachable.bytes, definite.bytes], "\(kinds)")
                #expect(element("flame-note", in: html) == "Every block live at exit, by kind: the lost ones and the still reachable ones (the report below lists the lost kinds).")
                // The text report lists the lost kinds, as resolve does by default.
                let summary = try #require(element("summary", in: html))
                #expect(summary.contains("    definitely lost: 3 blocks, 231 bytes at lose ") && !summary.contains("    still reachable: \(countText(reachable.blocks)) blocks"), "\(summary)")
                #expect(summary.split(separator: "\n").contains { $0.hasPrefix("     still reachable: ") && $0.hasSuffix(" bytes in \(countText(reachable.blocks)) blocks") },
                        "the summary counts them: \(summary) \(reachable)")

                // Drawn by the page's script: a frame per kind with its bytes.
                let profile = scratch.root.appendingPathComponent("chromium-profile").path
                let dom = runPlain(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--window-size=1200,900",
                                             "--dump-dom", "file://\(page)"], timeout: 120)
                #expect(dom.exitedNormally && dom.status == 0, "\(dom.statusDescription) \(dom.stderrText.suffix(500))")
                let frames = dom.stdoutText.components(separatedBy: "class=\"frame").dropFirst()
                func drawn(_ name: String) -> [String] { frames.filter { $0.contains(">\(name)</div>") } }
                #expect(drawn("still reachable").count == 1 && drawn("still reachable").first?.contains("data-bytes=\"\(reachable.bytes)\"") == true)
                #expect(drawn("definitely lost").count == 1 && drawn("definitely lost").first?.contains("data-bytes=\"\(definite.bytes)\"") == true)
                #expect(drawn("all live blocks").first?.contains("data-bytes=\"\(reachable.bytes + definite.bytes)\"") == true)
            }
        }

        @Test("--suppressions takes its blocks out of the icicle and the text report, as resolve's; --show-leak-kinds picks the listed kinds; a missing file fails before the page is written")
        func suppressionsAndKinds() throws {
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            try withScratch { scratch in
                var env = E2E.cleanEnvironment()
                try Tracking(memDir: scratch.memDir).apply(to: &env)
                let ran = runProgram(program, [], environment: env, stdin: Data("grow 10 100\nlose 3 77\n".utf8))
                #expect(ran.status == 0, "\(ran.stdoutText)")
                let all = try resolveReport(scratch.memDir)
                let reachable = all.leaks.filter { $0.kind == "still_reachable" }
                let reachableBlocks = reachable.reduce(0) { $0 + $1.blocks }, reachableBytes = reachable.reduce(0) { $0 + $1.bytes }
                let supp = scratch.root.appendingPathComponent("lose.supp").path
                try "{\n   lose-it\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:lose\n}\n".write(toFile: supp, atomically: true, encoding: .utf8)

                let page = scratch.root.appendingPathComponent("suppressed.html").path
                let made = try memdir(["report", scratch.memDir.path, "--html", page, "--suppressions", supp, "--show-leak-kinds", "all"])
                #expect(made.status == 0, "\(made.stderrText)")
                let html = try String(contentsOfFile: page, encoding: .utf8)
                let root = try flameData(html)
                #expect(root["b"] as? Int == reachableBlocks && root["v"] as? Int == reachableBytes, "only the still reachable blocks: \(root["b"] ?? "?")")
                let process = try #require((root["c"] as? [[String: Any]])?.first)
                #expect((process["c"] as? [[String: Any]] ?? []).map { $0["n"] as? String ?? "?" } == ["still reachable"])
                #expect(element("flame-note", in: html) == "Every block live at exit, by kind: only still reachable ones, none lost (the report below lists the kinds asked for). Suppressions took 3 blocks out of it.", "\(element("flame-note", in: html) ?? "nil")")
                let summary = try #require(element("summary", in: html))
                #expect(!summary.contains("definitely lost: 3 blocks"), "\(summary)")
                #expect(summary.split(separator: "\n").contains { $0.hasPrefix("    still reachable: 10 blocks, 1,000 bytes at grow ") && $0.hasSuffix(grow) },
                        "--show-leak-kinds all lists them: \(summary)")
                #expect(summary.contains("          suppressed: 231 bytes in 3 blocks") && summary.contains("  suppressed by lose-it (\(supp):1): 231 bytes in 3 blocks"), "\(summary)")

                let missing = scratch.root.appendingPathComponent("never.html").path
                let failed = try memdir(["report", scratch.memDir.path, "--html", missing, "--suppressions", scratch.root.appendingPathComponent("none.supp").path])
                #expect(failed.status == 9 && failed.stderrText.hasPrefix("memdir: error: cannot read suppressions file "), "\(failed.status) \(failed.stderrText)")
                #expect(!FileManager.default.fileExists(atPath: missing))
            }
        }

        @Test("the chart's legend names snapshot groups as function file:line, and the process's total from the snapshots' counters")
        func legendResolved() throws {
            let program = try E2E.example("server")
            let grow = try location("server.c", "SERVER: grow")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 40 100") == "grew 40")
                let a = scratch.root.appendingPathComponent("a.json").path, b = scratch.root.appendingPathComponent("b.json").path
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", a]).status == 0)
                #expect(try server.send("grow 60 100") == "grew 100")
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", b]).status == 0)
                let page = scratch.root.appendingPathComponent("r.html").path
                #expect(try memdir(["report", scratch.memDir.path, "--html", page, "--snapshot", a, "--snapshot", b]).status == 0)
                let html = try String(contentsOfFile: page, encoding: .utf8)
                let entries = legend(html)
                let heap = try #require(((JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b))) as? [String: Any])?["processes"] as? [[String: Any]])?
                    .first?["counters"] as? [String: Any])?["heap_current"] as? Int
                #expect(entries.first == "all live bytes of process \(server.pid): \(try #require(heap)) bytes", "\(entries)")
                let growEntry = entries.filter { $0.hasPrefix("grow ") && $0.hasSuffix(": 10000 bytes") }
                #expect(growEntry.count == 1 && frame(String(growEntry[0].dropLast(": 10000 bytes".count)), isAt: grow), "\(entries)")
                #expect(entries.count >= 3 && !entries.contains { $0.contains("server+0x") }, "every group resolved: \(entries)")
                #expect(html.contains("<polyline") && element("chart-note", in: html) == nil)
            }
        }

        @Test("a short watch --json history: totals drawn, groups seen once drawn as dots with a note that says why; one sample says what is missing")
        func shortHistory() throws {
            let program = try E2E.example("server")
            try withScratch { scratch in
                let server = try LiveProgram(program, tracking: Tracking(memDir: scratch.memDir, settleMs: 0))
                defer { server.kill9() }
                #expect(try server.readLine() == "ready")
                #expect(try server.send("grow 10 100") == "grew 10")
                func history(_ name: String, _ args: [String]) throws -> (path: String, lines: [[String: Any]]) {
                    let run = try memdir(["watch", scratch.memDir.path, "--json"] + args)
                    #expect(run.status == 0, "\(run.stderrText)")
                    let path = scratch.root.appendingPathComponent(name).path
                    try run.stdout.write(to: URL(fileURLWithPath: path))
                    let lines = try run.stdoutText.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                    return (path, lines)
                }
                func page(_ historyPath: String) throws -> String {
                    let page = scratch.root.appendingPathComponent("h.html").path
                    let made = try memdir(["report", scratch.memDir.path, "--html", page, "--history", historyPath])
                    #expect(made.status == 0, "\(made.stderrText)")
                    return try String(contentsOfFile: page, encoding: .utf8)
                }
                func count(_ text: String, _ html: String) -> Int { html.components(separatedBy: text).count - 1 }

                // Three samples; watch rescans for groups every 5, so only the first has groups.
                let short = try history("short.jsonl", ["--count", "3", "--interval", "20ms"])
                try #require(short.lines.count == 3)
                let groupsSeen = (short.lines[0]["groups"] as? [[String: Any]])?.count ?? 0
                #expect(groupsSeen >= 2 && short.lines.dropFirst().allSatisfy { $0["groups"] is NSNull }, "\(short.lines)")
                let moments = Set(short.lines.compactMap { $0["time_unix_ms"] as? Int }).count
                try #require(moments >= 2)
                let drawn = try page(short.path)
                #expect(count("<polyline", drawn) == 1 && count("stroke-dasharray", drawn) == 1, "the process's total, from every sample")
                #expect(count("<circle", drawn) == min(groupsSeen, 5), "each group seen once is a dot")
                #expect(element("chart-note", in: drawn) == "The history <code>\(short.path)</code> has \(moments) moments of totals, groups at 1 of them (<code>memdir watch</code> rescans the directory for groups every 5 samples by default; <code>--rescan 1</code> samples them every time).")
                #expect(legend(drawn).first == "all live bytes of process \(server.pid): \(short.lines.last?["heap_current"] as? Int ?? -1) bytes")

                // With --rescan 1 every sample has groups: lines, no note.
                // (watch spaces rescans at 24 times their CPU time: at 200 ms a first rescan of
                // more than 8 ms, seen once in a loaded full run, left the second sample without
                // groups; 1 s allows 41 ms.)
                let every = try history("full.jsonl", ["--count", "3", "--interval", "1s", "--rescan", "1"])
                try #require(every.lines.allSatisfy { ($0["groups"] as? [[String: Any]])?.count == groupsSeen }, "\(every.lines)")
                let full = try page(every.path)
                #expect(count("<circle", full) == 0 && count("<polyline", full) == 1 + min(groupsSeen, 5) && element("chart-note", in: full) == nil, "\(element("chart-note", in: full) ?? "")")

                // One sample: no chart, and the page says what is missing (not the flag it was given).
                let one = try history("one.jsonl", ["--count", "1"])
                let single = try page(one.path)
                #expect(!single.contains("<svg id=\"chart\""))
                #expect(element("chart-note", in: single) == "The history <code>\(one.path)</code> has one sample: let <code>memdir watch --json</code> run for two intervals or more (<code>--count 2</code>) for a line.")
            }
        }
    }
}
