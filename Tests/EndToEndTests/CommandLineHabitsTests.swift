// CommandLineHabitsTests.swift: the command line people expect (issue 16, part 3), through the
// built memdir: --version, the man page read by real man readers (mandoc, groff, man), shell
// completion run in the real shells (bash, zsh, fish), "did you mean", and errors that say
// what to do.

import Foundation
import MemdirKit
import Testing

/// A tool from the distribution (.ci/run installs it); nil when it is not on PATH.
func distributionTool(_ name: String) -> String? { findExecutable(name)?.path }

/// Text as a terminal shows it: overstrike (bold `X\bX`, underline `_\bX`) removed.
func plainText(_ text: String) -> String {
    var out: [Character] = []
    for c in text {
        if c == "\u{8}" { if !out.isEmpty { out.removeLast() }; continue }
        out.append(c)
    }
    return String(out)
}

/// The options a `--help` text lists (`-h, --help` aside), in order.
func helpOptions(_ help: String) -> [String] {
    guard let section = help.components(separatedBy: "\nOPTIONS:\n").last else { return [] }
    return section.split(separator: "\n").compactMap { line -> String? in
        guard line.hasPrefix("  -") else { return nil }
        let name = String(line.dropFirst(2).prefix { $0 != " " && $0 != "," })
        return name == "-h" ? nil : name
    }
}

/// The subcommands `memdir --help` lists.
func helpSubcommands() throws -> [String] {
    let help = try memdir(["--help"])
    let section = try #require(help.stdoutText.components(separatedBy: "\nSUBCOMMANDS:\n").last)
    return section.split(separator: "\n").prefix { $0.hasPrefix("  ") }.map { String($0.dropFirst(2).prefix { $0 != " " }) }
}

extension EndToEnd {
    @Suite("Command line habits")
    struct CommandLineHabitsTests {
        static let mandoc = distributionTool("mandoc")
        static let groff = distributionTool("groff")
        static let man = distributionTool("man")
        static let bash = distributionTool("bash")
        static let zsh = distributionTool("zsh")
        static let fish = distributionTool("fish")

        /// The version in Version.swift, read as the release script reads it (grep of one line).
        static func sourceVersion() throws -> String {
            let text = try String(contentsOf: E2E.packageRoot.appendingPathComponent("Sources/MemdirKit/Support/Version.swift"), encoding: .utf8)
            let lines = text.split(separator: "\n").filter { $0.contains("public static let current = \"") }
            try #require(lines.count == 1, "one greppable version line: \(lines)")
            let version = String(lines[0].split(separator: "\"")[1])
            #expect(version.split(separator: ".").count == 3 && version.split(separator: ".").allSatisfy { Int($0) != nil }, "X.Y.Z: \(version)")
            return version
        }

        @Test("--version and version print memdir X.Y.Z and the formats; the formats named are those a real run writes and reads")
        func version() throws {
            let expected = try Self.sourceVersion()
            let long = try memdir(["--version"]), word = try memdir(["version"])
            #expect(long.status == 0 && word.status == 0 && long.stderrText.isEmpty)
            #expect(long.stdoutText == word.stdoutText)
            let lines = long.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.first == "memdir \(expected)")
            func row(_ section: String, _ format: String) -> String? {
                guard let start = lines.firstIndex(of: section) else { return nil }
                return lines[(start + 1)...].prefix { $0.hasPrefix("  ") }.first { $0.hasPrefix("  \(format) ") }
            }
            // What a real run of the seeds writes: the report's schema, the record headers.
            let program = try E2E.example("seeds")
            try withScratch { scratch in
                let reportPath = scratch.root.appendingPathComponent("report.json")
                #expect(try memdir(["run", "--dir", scratch.memDir.path, "--json-file", reportPath.path, "--", program]).status == 23)
                let report = try JSONSerialization.jsonObject(with: Data(contentsOf: reportPath)) as? [String: Any]
                let schema = try #require(report?["schema"] as? String)
                #expect(row("writes:", schema)?.hasSuffix("--json and --json-file reports") == true, "\(schema) in \(lines)")
                let dir = try onlyRunDirectory(scratch.memDir)
                let process = try String(contentsOf: dir.url.appendingPathComponent("process"), encoding: .utf8)
                let recordVersion = String(process.prefix { $0 != " " })
                #expect(recordVersion == "memtrack/1" && row("reads:", recordVersion) != nil, "\(recordVersion)")
                let stacks = try String(contentsOf: dir.url.appendingPathComponent("stacks"), encoding: .utf8)
                #expect(stacks.hasPrefix("memtrack/2 stacks\n") && row("reads:", "memtrack/2 stacks, sources") != nil)
                let blocks = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasSuffix(".mem") }
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: dir.url.appendingPathComponent(try #require(blocks.first)).path)
                #expect(target.hasPrefix("2 ") && row("reads:", "block records 1 and 2") != nil, "a version 2 block record: \(target)")
                let snapshot = scratch.root.appendingPathComponent("s.json").path
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", snapshot]).status == 0)
                let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: snapshot))) as? [String: Any]
                let snapshotSchema = try #require(saved?["schema"] as? String)
                #expect(row("writes:", snapshotSchema)?.hasSuffix(" snapshot") == true && row("reads:", snapshotSchema) != nil)
            }
            #expect(try memdir(["version", "extra"]).stderrText == "memdir: error: unexpected argument 'extra' (see memdir version --help)\n")
        }

        /// The man page, written to a file in `scratch`.
        func manPage(_ scratch: Scratch) throws -> String {
            let page = try memdir(["help", "--man"])
            #expect(page.status == 0 && page.stderrText.isEmpty)
            let path = scratch.root.appendingPathComponent("memdir.1").path
            try page.stdout.write(to: URL(fileURLWithPath: path))
            return path
        }

        @Test("help --man: mandoc's lint and groff find nothing to warn about, and man shows every subcommand, option, variable and status",
              .enabled(if: mandoc != nil && groff != nil && man != nil, "mandoc, groff or man is missing (apt-get install mandoc groff-base man-db; .ci/run does)"))
        func manPageInRealReaders() throws {
            try withScratch { scratch in
                let path = try manPage(scratch)
                let lint = runPlain(Self.mandoc!, ["-T", "lint", "-W", "all", path])
                #expect(lint.status == 0 && lint.stdoutText.isEmpty && lint.stderrText.isEmpty, "mandoc: \(lint.stdoutText)\(lint.stderrText)")
                let checked = runPlain(Self.groff!, ["-man", "-Tutf8", "-ww", "-z", path])
                #expect(checked.status == 0 && checked.stderrText.isEmpty, "groff: \(checked.stderrText)")

                let byMan = runPlain(Self.man!, ["-l", path], extraEnvironment: ["MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"])
                #expect(byMan.status == 0 && byMan.stderrText.isEmpty, "man: \(byMan.stderrText)")
                let byMandoc = runPlain(Self.mandoc!, ["-T", "utf8", path])
                #expect(byMandoc.status == 0)
                let version = try Self.sourceVersion()
                for (reader, rendered) in [("man", plainText(byMan.stdoutText)), ("mandoc", plainText(byMandoc.stdoutText))] {
                    let lines = rendered.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    #expect(lines.first?.hasPrefix("MEMDIR(1)") == true && lines.last { !$0.isEmpty }?.hasPrefix("memdir \(version) ") == true, "\(reader): \(lines.prefix(2))")
                    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "ENVIRONMENT", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
                        #expect(lines.contains(section), "\(reader): section \(section)")
                    }
                    let sections = try manCommandSections(lines)
                    let subcommands = try helpSubcommands()
                    #expect(sections.keys.sorted() == subcommands.sorted(), "\(reader): a subsection per subcommand")
                    // Environment: every variable README's Configuration table documents, and memdir's own.
                    let environment = section("ENVIRONMENT", of: lines)
                    for variable in try readmeConfigurationVariables() + ["MEMDIR_LIBRARY", "TMPDIR"] {
                        #expect(environment.contains("       \(variable)") || environment.contains { $0.hasPrefix("       \(variable) ") }, "\(reader): \(variable) in ENVIRONMENT")
                    }
                    // Exit statuses: every one the reference's table lists (the DocC catalog's Commands article).
                    let statuses = section("EXIT STATUS", of: lines).filter { $0.hasPrefix("       ") && !$0.hasPrefix("        ") }
                        .compactMap { Int($0.dropFirst(7).prefix { $0 != " " }) }
                    #expect(Set(statuses) == Set(try documentedExitStatuses()), "\(reader): \(statuses.sorted())")
                    let seeAlso = section("SEE ALSO", of: lines).joined(separator: " ")
                    #expect(seeAlso.contains("valgrind(1)") && seeAlso.contains("heaptrack(1)"), "\(reader): \(seeAlso)")
                }
            }
        }

        /// Lines of the rendered section `name` (up to the next heading).
        func section(_ name: String, of lines: [String]) -> [String] {
            guard let start = lines.firstIndex(of: name) else { return [] }
            return Array(lines[(start + 1)...].prefix { $0.isEmpty || $0.hasPrefix(" ") })
        }

        /// COMMANDS of a rendered page: subcommand -> the options its subsection lists (the tags
        /// after its "Options:" line; their text is indented further).
        func manCommandSections(_ lines: [String]) throws -> [String: [String]] {
            var result: [String: [String]] = [:]
            var current: String?
            var inOptions = false
            for line in section("COMMANDS", of: lines) {
                if line.hasPrefix("   ") && !line.hasPrefix("    ") {
                    current = String(line.dropFirst(3))
                    result[current!] = []
                    inOptions = false
                } else if line == "       Options:" {
                    inOptions = true
                } else if let current, inOptions, line.hasPrefix("       -") {
                    result[current]!.append(String(line.dropFirst(7).prefix { $0 != " " }))
                }
            }
            return result
        }

        func readmeConfigurationVariables() throws -> [String] {
            let readme = try String(contentsOf: E2E.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
            let table = try #require(readme.components(separatedBy: "\n## Configuration\n").last?.components(separatedBy: "\n## ").first)
            let names = table.split(separator: "\n").filter { $0.hasPrefix("| `MEM_") }.map { String($0.dropFirst(3).prefix { $0 != "`" }) }
            #expect(names.count >= 12, "\(names)")
            return names
        }

        /// The statuses of the exit-status table in the DocC catalog (README links to it).
        func documentedExitStatuses() throws -> [Int] {
            let article = try String(contentsOf: E2E.packageRoot.appendingPathComponent("Sources/MemdirKit/MemdirKit.docc/Commands.md"), encoding: .utf8)
            let after = try #require(article.components(separatedBy: "\n## Exit statuses\n").dropFirst().first)
            let table = after.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.isEmpty }.prefix { $0.hasPrefix("|") }
            let statuses = table.compactMap { line in Int(line.dropFirst(2).prefix { $0 != " " }) }
            #expect(statuses.count >= 16, "\(statuses)")
            return statuses
        }

        @Test("--help of every subcommand and the man page list the same options, in the same order",
              .enabled(if: mandoc != nil, "mandoc is missing (apt-get install mandoc; .ci/run does)"))
        func helpAndManAgree() throws {
            try withScratch { scratch in
                let rendered = plainText(runPlain(Self.mandoc!, ["-T", "utf8", try manPage(scratch)]).stdoutText)
                let sections = try manCommandSections(rendered.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
                let subcommands = try helpSubcommands()
                #expect(subcommands.count == MemdirCLI.allCommands.count && subcommands.contains("completion") && subcommands.contains("run"))
                var total = 0
                for name in subcommands {
                    let help = try memdir([name, "--help"])
                    #expect(help.status == 0)
                    let options = helpOptions(help.stdoutText)
                    total += options.count
                    #expect(sections[name] == options, "\(name): man \(sections[name] ?? []) vs --help \(options)")
                }
                #expect(total >= 40, "the comparison saw the options: \(total)")
            }
        }

        // MARK: completion

        /// COMPREPLY of bash's real completion function for the words typed (the last is completed).
        func bashComplete(_ script: String, _ words: [String], in directory: URL? = nil) -> [String] {
            let driver = """
                source "$1"; shift
                COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
                _memdir
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let run = runPlain(Self.bash!, ["--norc", "-c", driver, "bash", script] + words, currentDirectory: directory)
            #expect(run.status == 0 && run.stderrText.isEmpty, "bash: \(run.stderrText)")
            return run.stdoutText.split(separator: "\n").map(String.init)
        }

        func completionScript(_ shell: String, _ scratch: Scratch) throws -> String {
            let made = try memdir(["completion", shell])
            #expect(made.status == 0 && made.stderrText.isEmpty)
            let path = scratch.root.appendingPathComponent("memdir.\(shell)").path
            try made.stdout.write(to: URL(fileURLWithPath: path))
            return path
        }

        @Test("completion bash: the real completion function completes subcommands, every option of every subcommand, fixed values and files",
              .enabled(if: bash != nil, "bash is missing"))
        func bashCompletion() throws {
            try withScratch { scratch in
                let script = try completionScript("bash", scratch)
                let subcommands = try helpSubcommands()
                #expect(bashComplete(script, ["memdir", ""]).sorted() == (subcommands + ["--help", "--version"]).sorted())
                #expect(bashComplete(script, ["memdir", "li"]) == ["list"])
                #expect(bashComplete(script, ["memdir", "re"]).sorted() == ["report", "resolve"])
                #expect(bashComplete(script, ["memdir", "--v"]) == ["--version"])
                for name in subcommands {
                    let options = helpOptions(try memdir([name, "--help"]).stdoutText)
                    #expect(bashComplete(script, ["memdir", name, "--"]).sorted() == (options + ["--help"]).filter { $0.hasPrefix("--") }.sorted(), "\(name)")
                }
                #expect(bashComplete(script, ["memdir", "list", "--by", ""]) == ["caller", "frame", "stack"])
                #expect(bashComplete(script, ["memdir", "list", "--by", "=", "s"]) == ["stack"], "--by=s")
                #expect(bashComplete(script, ["memdir", "resolve", "--json", "--format", "f"]) == ["folded"])
                #expect(bashComplete(script, ["memdir", "completion", ""]) == ["bash", "zsh", "fish"])
                #expect(bashComplete(script, ["memdir", "help", "s"]).sorted() == ["snapshot", "stats"])
                // A FILE value and a DIR positional complete from the file system.
                try FileManager.default.createDirectory(at: scratch.root.appendingPathComponent("records-dir"), withIntermediateDirectories: true)
                try Data().write(to: scratch.root.appendingPathComponent("history.jsonl"))
                #expect(bashComplete(script, ["memdir", "report", "--history", "hist"], in: scratch.root) == ["history.jsonl"])
                #expect(bashComplete(script, ["memdir", "list", "rec"], in: scratch.root) == ["records-dir"])
                #expect(bashComplete(script, ["memdir", "list", "hist"], in: scratch.root) == [], "list takes a directory")
                // After run's PROGRAM the words are the program's: its options are not memdir's.
                #expect(bashComplete(script, ["memdir", "run", "--by", "caller", "bas"]).contains("bash"), "a command name")
                #expect(bashComplete(script, ["memdir", "run", "bash", "--js"]) == [], "the program's own options")
                #expect(bashComplete(script, ["memdir", "run", "--js"]).sorted() == ["--json", "--json-fd", "--json-file"])
            }
        }

        @Test("completion zsh: parses, and in an interactive zsh (zpty) Tab completes subcommands, options and values",
              .enabled(if: zsh != nil, "zsh is missing (apt-get install zsh; .ci/run does)"))
        func zshCompletion() throws {
            try withScratch { scratch in
                let script = try completionScript("zsh", scratch)
                let syntax = runPlain(Self.zsh!, ["-n", script])
                #expect(syntax.status == 0 && syntax.stderrText.isEmpty, "zsh -n: \(syntax.stderrText)")
                let driver = scratch.root.appendingPathComponent("capture.zsh").path
                try Self.zshCapture.write(toFile: driver, atomically: true, encoding: .utf8)
                func complete(_ line: String) -> [String] {
                    let run = runPlain(Self.zsh!, ["-f", driver, line, script], extraEnvironment: ["HOME": scratch.root.path], timeout: 60)
                    #expect(run.status == 0 && !run.timedOut, "zsh: \(run.statusDescription) \(run.stderrText)")
                    return run.stdoutText.split(separator: "\n").map(String.init)
                }
                #expect(complete("memdir li") == ["list"])
                let subcommands = try helpSubcommands()
                #expect(complete("memdir ").sorted() == subcommands.sorted())
                #expect(complete("memdir list --by ") == ["caller", "frame", "stack"])
                #expect(complete("memdir list --by=") == ["caller", "frame", "stack"])
                #expect(complete("memdir resolve --js") == ["--json", "--json-file"])
                #expect(complete("memdir completion ") == ["bash", "fish", "zsh"])
                #expect(complete("memdir snapshot -") == ["--addr2line", "--by", "--format", "--help", "--wrapper", "-o"])
            }
        }

        /// Completes the words in $1 in a real interactive zsh in a pseudo-terminal (zpty), with
        /// the script $2 loaded, and prints the candidates offered, one a line. Tab runs a widget
        /// that completes and then prints a marker, which the reader waits for. The markers are
        /// split in the typed text (`<HI""T>`): the terminal's echo of a typed line, which zle may
        /// redraw late on a loaded machine, must not read as a marker.
        static let zshCapture = #"""
            zmodload zsh/zpty
            zpty z zsh -f -i
            zpty -w z "PROMPT='' RPROMPT=''; autoload -Uz compinit; compinit -u -d \$HOME/.zcompdump"
            zpty -w z "source ${(q)2}"
            zpty -w z 'compadd() {
              if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
              local -a __hits; builtin compadd -A __hits "$@"
              local h; for h in $__hits; do print -r -- "<HI""T>$h</HIT>"; done
              builtin compadd "$@"
            }'
            zpty -w z '_test_complete() { zle complete-word; print -r -- "<COMPLE""TED>" }; zle -N _test_complete; bindkey "^I" _test_complete'
            zpty -w z "zstyle ':completion:*' list-prompt ''; zstyle ':completion:*' menu no; setopt nolistambiguous nobeep; print '<REA''DY>'"
            zpty -r z line '*<READY>*'
            zpty -n -w z "$1"$'\t'
            zpty -r z out '*<COMPLETED>*'
            print -r -- ${(F)${(M)${(f)${out//<HIT>/
            <HIT>}}:#<HIT>*}} | sed -e 's/<HIT>//' -e 's/<\/HIT>.*//' | sort -u
            zpty -d z
            """#

        @Test("completion fish: fish's own complete -C offers the subcommands, options and values",
              .enabled(if: fish != nil, "fish is missing (apt-get install fish; .ci/run does)"))
        func fishCompletion() throws {
            try withScratch { scratch in
                let script = try completionScript("fish", scratch)
                func complete(_ line: String) -> [String] {
                    let run = runPlain(Self.fish!, ["--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, line],
                                       extraEnvironment: ["HOME": scratch.root.path, "XDG_CONFIG_HOME": scratch.root.path])
                    #expect(run.status == 0 && run.stderrText.isEmpty, "fish: \(run.stderrText)")
                    return run.stdoutText.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) }
                }
                #expect(complete("memdir li") == ["list"])
                #expect(complete("memdir ").sorted() == (try helpSubcommands()).sorted())
                #expect(complete("memdir list --by ") == ["caller", "frame", "stack"])
                #expect(complete("memdir list --by=") == ["--by=caller", "--by=frame", "--by=stack"])
                #expect(complete("memdir watch --j") == ["--json"])
                #expect(complete("memdir completion ") == ["bash", "fish", "zsh"])
                let listOptions = helpOptions(try memdir(["list", "--help"]).stdoutText) + ["--help"]
                #expect(complete("memdir list --").sorted() == listOptions.sorted())
            }
        }

        // MARK: did you mean

        @Test("a typo in a subcommand, an option or a shell gets 'did you mean', with the usage status 2; a word far from all gets none")
        func didYouMean() throws {
            func check(_ args: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let run = try memdir(args)
                #expect(run.status == 2 && run.stdoutText.isEmpty && run.stderrText == "memdir: error: \(message)\n", "\(run.stderrText)", sourceLocation: sourceLocation)
            }
            try check(["lsit"], "unknown subcommand 'lsit'; did you mean 'list'? (see memdir --help)")
            try check(["reslove", "mem"], "unknown subcommand 'reslove'; did you mean 'resolve'? (see memdir --help)")
            try check(["snapshots"], "unknown subcommand 'snapshots'; did you mean 'snapshot'? (see memdir --help)")
            try check(["run", "--josn", "--", "/bin/true"], "unknown option '--josn'; did you mean '--json'? (see memdir run --help)")
            try check(["list", "--gen-supressions"], "unknown option '--gen-supressions'; did you mean '--gen-suppressions'? (see memdir list --help)")
            try check(["--verison"], "unknown option '--verison'; did you mean '--version'? (see memdir --help)")
            try check(["completion", "bsh"], "unknown shell 'bsh' (expected bash, zsh or fish); did you mean 'bash'? (see memdir completion --help)")
            try check(["help", "wacth"], "unknown subcommand 'wacth'; did you mean 'watch'? (see memdir help --help)")
            try check(["frobnicate"], "unknown subcommand 'frobnicate' (see memdir --help)")
            try check(["list", "--bogus"], "unknown option '--bogus' (see memdir list --help)")
        }

        // MARK: errors that say what to do

        @Test("diff given a report, or report given a report or snapshot in the wrong place, says what the file is and how to make the right one")
        func wrongFileKinds() throws {
            let program = try E2E.example("seeds")
            try withScratch { scratch in
                let reportPath = scratch.root.appendingPathComponent("report.json").path
                #expect(try memdir(["run", "--dir", scratch.memDir.path, "--json-file", reportPath, "--", program]).status == 23)
                let snapshot = scratch.root.appendingPathComponent("s.json").path
                #expect(try memdir(["snapshot", scratch.memDir.path, "-o", snapshot]).status == 0)
                let snapshotHint = "make snapshots with `memdir snapshot DIR -o FILE`, or give the records directory itself"

                let diff = try memdir(["diff", reportPath, snapshot])
                #expect(diff.status == 6 && diff.stdoutText.isEmpty)
                #expect(diff.stderrText == "memdir: error: \(reportPath) is a memdir report (memdir-report/2), not a snapshot; \(snapshotHint)\n")
                let second = try memdir(["diff", snapshot, reportPath])
                #expect(second.status == 6 && second.stderrText == "memdir: error: \(reportPath) is a memdir report (memdir-report/2), not a snapshot; \(snapshotHint)\n")

                let page = scratch.root.appendingPathComponent("r.html").path
                let asSnapshot = try memdir(["report", scratch.memDir.path, "--html", page, "--snapshot", reportPath])
                #expect(asSnapshot.status == 6 && asSnapshot.stderrText == "memdir: error: \(reportPath) is a memdir report (memdir-report/2), not a snapshot; \(snapshotHint)\n")
                let asHistory = try memdir(["report", scratch.memDir.path, "--html", page, "--history", snapshot])
                #expect(asHistory.status == 6 && asHistory.stderrText == "memdir: error: \(snapshot) is a snapshot (memdir-snapshot/1), not a watch history; write one with `memdir watch DIR --json > FILE`\n")
                #expect(!FileManager.default.fileExists(atPath: page), "no page for a bad input")

                // A watch history given to diff (JSON lines, not one document).
                let history = scratch.root.appendingPathComponent("h.jsonl").path
                let watched = try memdir(["watch", scratch.memDir.path, "--json", "--count", "2", "--interval", "1ms"])
                #expect(watched.status == 0)
                try watched.stdout.write(to: URL(fileURLWithPath: history))
                let lines = try memdir(["diff", history, snapshot])
                #expect(lines.status == 6 && lines.stderrText == "memdir: error: \(history) is a watch history (memdir-watch/1), not a snapshot; \(snapshotHint)\n")
                // The right inputs still work.
                #expect(try memdir(["diff", snapshot, scratch.memDir.path]).status == 0)
            }
        }

        @Test("list, resolve, stats, snapshot, watch, report and check without a records directory say how to make one, and the way they give works")
        func noRecordsDirectory() throws {
            let library = canonicalPath(try E2E.products().appendingPathComponent("libmemtrack.so").path)
            try withScratch { scratch in
                let missing = scratch.root.appendingPathComponent("nothing-here").path
                let empty = scratch.root.appendingPathComponent("empty").path
                try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
                func hint(_ dir: String) -> String { "; record one with `LD_PRELOAD=\(library) MEM_DIR=\(dir) PROGRAM`, or run the program with `memdir run -- PROGRAM`" }
                let page = scratch.root.appendingPathComponent("r.html").path
                for command in [["list"], ["resolve"], ["stats"], ["snapshot"], ["watch", "--count", "1"], ["report", "--html", page], ["check"]] {
                    let gone = try memdir([command[0], missing] + command.dropFirst())
                    #expect(gone.status == 3 && gone.stderrText == "memdir: error: cannot read directory \(missing): no such file or directory\(hint(missing))\n", "\(command): \(gone.stderrText)")
                    let none = try memdir([command[0], empty] + command.dropFirst())
                    #expect(none.status == 4 && none.stderrText == "memdir: error: no tracker records in \(empty)\(hint(empty))\n", "\(command): \(none.stderrText)")
                }
                // The default ./mem, from a directory without one.
                let here = try memdir(["list"], currentDirectory: scratch.root)
                #expect(here.status == 3 && here.stderrText == "memdir: error: cannot read directory ./mem: no such file or directory\(hint("./mem"))\n")
                // Another file than the records directory keeps its own error.
                let noHistory = try memdir(["report", empty, "--html", page, "--history", missing])
                #expect(noHistory.status == 4, "the directory is checked first")

                // Doing what the hint says records a leak that list then finds.
                let line = try #require(here.stderrText.components(separatedBy: "`").dropFirst().first)
                let words = line.split(separator: " ").map(String.init)
                #expect(words.count == 3 && words[2] == "PROGRAM")
                let leaky = try E2E.example("seeds")
                var env = E2E.cleanEnvironment()
                for assignment in words.prefix(2) {
                    let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
                    env[parts[0]] = parts[1]
                }
                let traced = runProgram(leaky, [], environment: env, currentDirectory: scratch.root)
                #expect(traced.status == 0, "\(traced.stderrText)")
                let list = try memdir(["list", "--json"], currentDirectory: scratch.root)
                #expect(list.status == 0, "\(list.stderrText)")
                let report = try reportView(try parseJSON(list))
                #expect(report.leaks.map(\.kind) == ["definitely_lost"] && report.leaks.map(\.bytes) == [30], "\(report.leaks.map(\.raw))")
            }
        }
    }
}
