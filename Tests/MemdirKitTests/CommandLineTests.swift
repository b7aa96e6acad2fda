// CommandLineTests.swift: option parsing, help text and exit statuses of MemdirCLI.

import Testing
@testable import MemdirKit

@Suite struct CommandLineTests {
    func run(_ args: [String]) -> (Int32, String, String) {
        let c = Captured()
        let status = MemdirCLI.main(args, console: c.console)
        return (status, c.out, c.err)
    }

    @Test func helpListsEverySubcommand() {
        let (status, out, _) = run(["--help"])
        #expect(status == 0)
        for name in ["list", "resolve", "run"] { #expect(out.contains("\n  \(name) ")) }
        let (s2, sub, _) = run(["run", "--help"])
        #expect(s2 == 0)
        #expect(sub.hasPrefix("OVERVIEW: Run a program under libmemtrack.so"))
        #expect(sub.contains("  --error-exitcode <N>"))
        #expect(sub.contains("MEMDIR_LIBRARY"))
        #expect(run(["list", "-h"]).1.contains("  --by <caller|frame|stack>"))
    }

    @Test func usageErrorsExit2() {
        #expect(run(["list", "--bogus"]) == (2, "", "memdir: error: unknown option '--bogus' (see memdir list --help)\n"))
        #expect(run(["list", "--by"]).2 == "memdir: error: missing value for '--by' (see memdir list --help)\n")
        #expect(run(["list", "--by", "module"]).0 == 2)
        #expect(run(["frobnicate"]).2 == "memdir: error: unknown subcommand 'frobnicate' (see memdir --help)\n")
        #expect(run(["run"]).2 == "memdir: error: missing PROGRAM to run (see memdir run --help)\n")
        #expect(run(["run", "--error-exitcode", "x", "true"]).0 == 2)
        #expect(run([]).0 == 2)
    }

    @Test func parserShapes() throws {
        let opts = RunCommand.options
        let a = try ArgumentParser.parse(["--by=stack", "--wrapper", "a", "--wrapper=b*", "--json", "prog", "--json", "-x"],
                                         options: opts, stopAtFirstPositional: true)
        #expect(a.value("--by") == "stack")
        #expect(a.all("--wrapper") == ["a", "b*"])
        #expect(a.flag("--json"))
        #expect(a.positionals == ["prog", "--json", "-x"])
        let b = try ArgumentParser.parse(["--", "-weird-dir"], options: ListCommand.options)
        #expect(b.positionals == ["-weird-dir"])
        #expect(throws: MemdirError.usage("option '--by' given more than once")) {
            try ArgumentParser.parse(["--by", "frame", "--by", "stack"], options: ListCommand.options)
        }
    }

    @Test func directoryStatuses() {
        let t = TempDir(); defer { t.remove() }
        // Both end with how to record one (CommandLineHabitsTests checks the whole hint).
        let missing = run(["list", t.path + "/missing"])
        #expect(missing.0 == 3 && missing.2.hasPrefix("memdir: error: cannot read directory \(t.path)/missing: no such file or directory; record one with `LD_PRELOAD="))
        let empty = run(["list", t.path])
        #expect(empty.0 == 4 && empty.2.hasPrefix("memdir: error: no tracker records in \(t.path); record one with `LD_PRELOAD="))
    }

    @Test func runStatuses() throws {
        let t = TempDir(); defer { t.remove() }
        let lib = t.write("libmemtrack.so", "not really")
        // MEMDIR_LIBRARY is read from the environment; findLibrary is tested directly.
        #expect(throws: MemdirError.libraryNotFound(searched: [t.path + "/nope.so"])) {
            try RunCommand.findLibrary(environment: ["MEMDIR_LIBRARY": t.path + "/nope.so"])
        }
        #expect(try RunCommand.findLibrary(environment: ["MEMDIR_LIBRARY": lib]) == lib)
        let script = t.write("script.sh", "#!/bin/sh\nexit 3\n")
        #expect(throws: MemdirError.programNotFound("no-such-program-memdir")) {
            try RunCommand.spawnAndWait(path: "no-such-program-memdir", argv: ["no-such-program-memdir"], environment: [:])
        }
        #expect(throws: MemdirError.programNotExecutable(path: script, reason: "Permission denied")) {
            try RunCommand.spawnAndWait(path: script, argv: [script], environment: [:])
        }
        #expect(findExecutable(script)?.executable == false)
        #expect(findExecutable("no-such-program-memdir") == nil)
        #expect(try RunCommand.spawnAndWait(path: "/bin/sh", argv: ["sh", "-c", "exit 3"], environment: [:]) == 3)
        #expect(try RunCommand.spawnAndWait(path: "/bin/sh", argv: ["sh", "-c", "kill -9 $$"], environment: [:]) == 137)
        #expect(throws: MemdirError.usage("--dir \(t.path) must be empty or not exist")) {
            try RunCommand.makeDirectory(t.path)
        }
        #expect(try RunCommand.makeDirectory(t.path + "/new") == t.path + "/new")
    }
}
