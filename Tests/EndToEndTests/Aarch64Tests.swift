// Aarch64Tests.swift: the tracker on aarch64. The interposer is cross-compiled with the plain
// one-line compiler invocation README documents, small programs from Examples/ with
// `aarch64-linux-gnu-gcc -g`, and both run under `qemu-aarch64-static -L /usr/aarch64-linux-gnu`
// (qemu-user: the real library, preloaded, in a real aarch64 process). The x86-64 memdir reads
// the records and resolves them with an addr2line that reads aarch64 (Addr2LineChoice.swift).
// The tools come from Debian's packages (.ci/run installs them); without them the suite is
// skipped and says why.

import Foundation
import Testing

enum Aarch64 {
    static let compiler = "/usr/bin/aarch64-linux-gnu-gcc"
    static let cxxCompiler = "/usr/bin/aarch64-linux-gnu-g++"
    static let qemu = "/usr/bin/qemu-aarch64-static"
    static let sysroot = "/usr/aarch64-linux-gnu"

    static var toolsPresent: Bool {
        [compiler, cxxCompiler, qemu].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The library and the programs, built once per test process into the build products
    /// directory (again only when a source changed).
    static let build: Result<URL, HarnessError> = Compile.directory("e2e-aarch64").flatMap { out in
        let root = E2E.packageRoot
        let interposer = root.appendingPathComponent("Sources/MemtrackInterposer")
        let sources = (FileManager.default.enumerator(atPath: interposer.path)?
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".c") }.sorted() ?? [])
            .map { "Sources/MemtrackInterposer/" + $0 }
        // README's command, as a packager would run it from the package root.
        let libraryFile = out.appendingPathComponent("libmemtrack-aarch64.so")
        let library = ["-shared", "-fPIC", "-O2", "-D_GNU_SOURCE", "-fvisibility=hidden", "-I", "include"] + sources
            + ["-ldl", "-lpthread", "-o", libraryFile.path]
        var steps = [CompileStep(tool: compiler, arguments: library, output: libraryFile, inputs: Compile.files(under: interposer))]
        func program(_ tool: String, _ name: String, _ source: String, _ arguments: [String]) {
            let output = out.appendingPathComponent(name)
            let file = E2E.examplesSource.appendingPathComponent(source)
            steps.append(CompileStep(tool: tool, arguments: arguments.map { $0 == "OUT" ? output.path : $0 == "SRC" ? file.path : $0 },
                                     output: output, inputs: [file] + Compile.exampleHeaders))
        }
        for name in ["seeds", "threads8", "signal_leak", "forking", "server", "shm_anonymous", "shm_posix"] {
            program(compiler, name, name + ".c", ["-g", "-o", "OUT", "SRC", "-pthread"])
        }
        program(compiler, "deepbind", "deepbind.c", ["-g", "-o", "OUT", "SRC", "-ldl"])
        program(compiler, "deepbind_lib.so", "deepbind_lib.c", ["-g", "-shared", "-fPIC", "-o", "OUT", "SRC"])
        for name in ["leak_kinds", "mismatch"] {
            program(cxxCompiler, name, name + ".cpp", ["-g", "-o", "OUT", "SRC"])
        }
        // Optimized without frame pointers, as programs built for speed are (gcc's -O2 alone
        // keeps aarch64's frame records in functions that call): only the CFI unwinder follows them.
        program(compiler, "unwind_o2", "unwind_o2.c", ["-O2", "-g", "-fomit-frame-pointer", "-o", "OUT", "SRC", "-pthread"])
        program(cxxCompiler, "unwind_o2_cxx", "unwind_o2_cxx.cpp", ["-O2", "-g", "-fomit-frame-pointer", "-o", "OUT", "SRC"])
        if let failure = Compile.run(steps, currentDirectory: root) { return .failure(failure) }
        return .success(out)
    }

    static func path(_ name: String) throws -> String { try build.get().appendingPathComponent(name).path }

    /// Runs an aarch64 program under qemu-user with the aarch64 tracker preloaded in the guest
    /// (qemu's -E sets the guest's environment; the host's LD_PRELOAD would load it into qemu).
    static func run(_ program: String, _ arguments: [String] = [], memDir: URL, library: String? = nil) throws -> RunResult {
        let guestEnvironment = ["LD_PRELOAD=\(try library ?? path("libmemtrack-aarch64.so"))", "MEM_DIR=\(memDir.path)"]
        return runProgram(qemu, ["-L", sysroot] + guestEnvironment.flatMap { ["-E", $0] } + [try path(program)] + arguments,
                          environment: E2E.cleanEnvironment(), currentDirectory: memDir.deletingLastPathComponent(), timeout: 120)
    }

    /// A leak's stack down to `main`, each frame as `function:line` when it is in `file`, the
    /// module's name for a run of frames in another module (libc's qsort: several), the file's
    /// name for a frame inlined from another source file, or `other` (a signal trampoline
    /// outside any module).
    static func chain(_ group: ReportGroup, in file: String) -> [String] {
        var result: [String] = []
        for text in group.frames {
            let words = text.split(separator: " ")
            let place = String(words.last ?? "")
            let entry: String
            if place.hasSuffix("/" + file) || place.hasPrefix(file + ":") || place.contains("/" + file + ":") {
                let function = words.dropLast().joined(separator: " ").split(separator: "(").first ?? ""
                entry = "\(function):\(place.split(separator: ":").last ?? "")"
            } else if let plus = text.range(of: "+0x"), !text.hasPrefix("0x") {
                entry = String(text[..<plus.lowerBound])
            } else if place.contains(":"), let name = place.split(separator: ":").first?.split(separator: "/").last {
                entry = String(name)    // inlined from another source file (a header)
            } else {
                entry = "other"
            }
            if entry != result.last || !entry.contains(".so") { result.append(entry) }
            if entry.hasPrefix("main:") { break }
        }
        return result
    }

    /// A clean environment whose PATH holds only the host's addr2line (Debian's reads x86 targets
    /// only), in a `bin` folder of the scratch directory.
    static func hostAddr2LineOnly(_ scratch: Scratch) throws -> [String: String] {
        let bin = scratch.root.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent("addr2line").path,
                                                   withDestinationPath: "/usr/bin/addr2line")
        var env = E2E.cleanEnvironment()
        env["PATH"] = bin.path
        return env
    }

    /// `expect ADDRESS KIND` lines a program printed.
    static func expectations(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("expect ") {
            let parts = line.split(separator: " ")
            if parts.count == 3 { result[String(parts[1])] = String(parts[2]) }
        }
        return result
    }
}

extension EndToEnd {
    @Suite(.enabled(if: Aarch64.toolsPresent,
                    "needs aarch64-linux-gnu-gcc, aarch64-linux-gnu-g++ and qemu-aarch64-static (.ci/run installs them)"))
    struct Aarch64Tests {
        @Test("aarch64: the plain compiler line builds an aarch64 libmemtrack.so")
        func libraryBuilds() throws {
            let library = try Aarch64.path("libmemtrack-aarch64.so")
            let header = try #require(FileHandle(forReadingAtPath: library)).readData(ofLength: 20)
            #expect(header.count == 20 && header[18] == 183 && header[19] == 0, "e_machine is not EM_AARCH64 (183)")
        }

        @Test("aarch64: the release's aarch64 library archive, unpacked, records a leak the x86-64 memdir resolves to its line",
              .enabled(if: ProcessInfo.processInfo.environment["MEMDIR_RELEASE_AARCH64_ARCHIVE"] != nil
                           || ProcessInfo.processInfo.environment["CI"] == "true",
                       "set MEMDIR_RELEASE_AARCH64_ARCHIVE (bash .ci/release makes it next to the x86-64 archive)"))
        func releaseLibraryArchive() throws {
            let archive = try #require(ProcessInfo.processInfo.environment["MEMDIR_RELEASE_AARCH64_ARCHIVE"],
                                       "CI must build it (.ci/run sets MEMDIR_RELEASE_AARCH64_ARCHIVE)")
            #expect(FileManager.default.fileExists(atPath: archive), "\(archive) is missing")
            try withScratch { scratch in
                let prefix = try unpackArchive(archive, in: scratch)
                let library = prefix.appendingPathComponent("lib/memdir/libmemtrack.so").path
                let header = try #require(FileHandle(forReadingAtPath: library)).readData(ofLength: 20)
                #expect(header.count == 20 && header[18] == 183 && header[19] == 0, "e_machine is not EM_AARCH64 (183)")
                let run = try Aarch64.run("seeds", memDir: scratch.memDir, library: library)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [try location("seeds.c", "LEAK: p3"): [30]])
                #expect(report.badFrees.map(\.kind) == ["double-free"], "\(report.badFrees.map(\.kind))")
            }
        }

        @Test("aarch64: a leak and a double free at their file:line; the modules record names the machine")
        func seeds() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("seeds", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                let modules = try String(contentsOf: dir.url.appendingPathComponent("modules"), encoding: .utf8)
                let moduleLines = modules.split(separator: "\n").filter { $0.hasPrefix("module ") }
                #expect(!moduleLines.isEmpty && moduleLines.allSatisfy { $0.contains(" machine=aarch64 ") }, "\(modules)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [try location("seeds.c", "LEAK: p3"): [30]])
                #expect(report.leaks.first?.kind == "definitely_lost", "\(report.leaks.map(\.kind))")
                let bad = report.badFrees
                #expect(bad.count == 1 && bad[0].kind == "double-free", "\(bad.map(\.kind))")
                #expect(bad.first.flatMap { $0.attributed }.map { frame($0, isAt: try! location("seeds.c", "DOUBLE-FREE: p4")) } == true,
                        "\(bad.map { $0.attributed ?? "nil" })")
                let alloc = bad.first?.raw["alloc_location"] as? String
                #expect(alloc.map { frame($0, isAt: try! location("seeds.c", "ALLOC: p4")) } == true, "\(alloc ?? "nil")")
                let firstFree = bad.first?.raw["free_location"] as? String
                #expect(firstFree.map { frame($0, isAt: try! location("seeds.c", "FIRST-FREE: p4")) } == true, "\(firstFree ?? "nil")")
            }
        }

        @Test("aarch64 records: memdir says when no addr2line reads aarch64, and MEMDIR_ADDR2LINE picks one")
        func addr2lineChoice() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("seeds", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                // A PATH with only the host's addr2line (Debian's reads x86 targets only).
                var env = try Aarch64.hostAddr2LineOnly(scratch)
                env.removeValue(forKey: "MEMDIR_ADDR2LINE")
                let leak = try location("seeds.c", "LEAK: p3")
                let without = runProgram(try E2E.memdirPath(), ["resolve", scratch.memDir.path], environment: env)
                #expect(without.exitedNormally && without.status == 0, "\(without.statusDescription) \(without.stderrText)")
                let seedsModule = try Aarch64.path("seeds")
                // The table's own warnings (after the processes, on stdout).
                #expect(without.stdoutText.split(separator: "\n").map(String.init).contains("warning: could not resolve \(seedsModule): no addr2line reads aarch64 files: "
                                                     + "install binutils-aarch64-linux-gnu or llvm, or set MEMDIR_ADDR2LINE"),
                        "\(without.stdoutText)")
                #expect(!without.stdoutText.contains(leak) && without.stdoutText.contains("seeds+0x"), "\(without.stdoutText)")
                // The override, by name on PATH or by path.
                for tool in ["/usr/bin/aarch64-linux-gnu-addr2line", "/usr/bin/llvm-addr2line"]
                where FileManager.default.isExecutableFile(atPath: tool) {
                    env["MEMDIR_ADDR2LINE"] = tool
                    let with = runProgram(try E2E.memdirPath(), ["resolve", scratch.memDir.path], environment: env)
                    #expect(with.exitedNormally && with.status == 0 && with.stdoutText.contains(leak),
                            "\(tool): \(with.stdoutText) \(with.stderrText)")
                }
            }
        }

        @Test("aarch64 records: --addr2line names the addr2line (over MEMDIR_ADDR2LINE); one that is not there is status 18")
        func addr2lineFlag() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("seeds", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                // A PATH with only the host's addr2line, and a variable naming nothing: the flag wins.
                var env = try Aarch64.hostAddr2LineOnly(scratch)
                env["MEMDIR_ADDR2LINE"] = scratch.root.appendingPathComponent("no-such-addr2line").path
                let leak = try location("seeds.c", "LEAK: p3")
                let tool = "/usr/bin/aarch64-linux-gnu-addr2line"
                let with = runProgram(try E2E.memdirPath(), ["resolve", scratch.memDir.path, "--addr2line", tool], environment: env)
                #expect(with.exitedNormally && with.status == 0 && with.stdoutText.contains(leak) && with.stderrText.isEmpty,
                        "\(with.statusDescription) \(with.stdoutText) \(with.stderrText)")
                // Missing, then not executable: one line on stderr, status 18, nothing on stdout.
                let notExecutable = scratch.root.appendingPathComponent("plain-file")
                try Data("not a program\n".utf8).write(to: notExecutable)
                for (value, reason) in [(scratch.root.appendingPathComponent("missing").path, "no such file"),
                                        (notExecutable.path, "not an executable file"),
                                        ("no-such-addr2line", "not found on PATH")] {
                    let bad = runProgram(try E2E.memdirPath(), ["resolve", scratch.memDir.path, "--addr2line", value], environment: env)
                    #expect(bad.exitedNormally && bad.status == 18 && bad.stdoutText.isEmpty
                            && bad.stderrText == "memdir: error: --addr2line \(value): \(reason)\n",
                            "\(bad.statusDescription) \(bad.stdoutText) \(bad.stderrText)")
                }
                // The variable's own error, when no flag overrides it.
                let variable = runProgram(try E2E.memdirPath(), ["resolve", scratch.memDir.path], environment: env)
                #expect(variable.exitedNormally && variable.status == 18
                        && variable.stderrText == "memdir: error: MEMDIR_ADDR2LINE \(env["MEMDIR_ADDR2LINE"]!): no such file\n",
                        "\(variable.statusDescription) \(variable.stderrText)")
            }
        }

        @Test("aarch64 under qemu-user, which has no ptrace: memdir check answers at once with a note, the server goes on")
        func checkOnRequest() throws {
            try withScratch { scratch in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Aarch64.qemu)
                process.arguments = ["-L", Aarch64.sysroot, "-E", "LD_PRELOAD=\(try Aarch64.path("libmemtrack-aarch64.so"))",
                                     "-E", "MEM_DIR=\(scratch.memDir.path)", try Aarch64.path("server")]
                process.environment = E2E.cleanEnvironment()
                let input = Spawn.pipe(), output = Spawn.pipe()
                process.standardInput = input
                process.standardOutput = output
                process.standardError = FileHandle.nullDevice
                try Spawn.run(process)
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                var lines = LineReader()
                func line() -> String { lines.next(from: output.fileHandleForReading) ?? "(ended)" }
                func ask(_ command: String) -> String {
                    input.fileHandleForWriting.write(Data((command + "\n").utf8))
                    return line()
                }
                #expect(line() == "ready")
                #expect(ask("lose 3 100") == "lost")
                #expect(ask("grow 2 200") == "grew 2")
                let runDirectory = scratch.memDir.appendingPathComponent(String(process.processIdentifier))
                let started = Date()
                let check = try memdir(["check", runDirectory.path])
                let seconds = Date().timeIntervalSince(started)
                #expect(check.exitedNormally && check.status == 0 && seconds < 10, "\(check.statusDescription) \(seconds) s \(check.stderrText)")
                #expect(check.stdoutText.contains("was not stopped (ptrace: EINVAL)"), "\(check.stdoutText)")
                let answers = try FileManager.default.contentsOfDirectory(atPath: runDirectory.path).filter { $0.hasPrefix("leak-check-") }
                #expect(answers.count == 1, "\(answers)")
                let answer = try #require(answers.first)
                let text = try String(contentsOf: runDirectory.appendingPathComponent(answer), encoding: .utf8)
                // The 3 dropped blocks are lost (the main thread's whole stack is read as it
                // runs, so a stale word may make one "possibly"); the 2 kept ones are not.
                #expect(text.contains("when request") && text.split(separator: "\n").filter { $0.hasPrefix("lost ") }.count == 3, "\(text)")
                #expect(ask("quit") == "bye")
                try input.fileHandleForWriting.close()
                process.waitUntilExit()
                #expect(process.terminationReason == .exit && process.terminationStatus == 0)
            }
        }

        @Test("aarch64: 800 leaks from 8 threads, each thread's 100 at the same line")
        func threads() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("threads8", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                let sizes = (0..<8).flatMap { i in Array(repeating: 100 + i, count: 100) }
                expectResolved(report, [try location("threads8.c", "LEAK: thread"): sizes])
                let dir = try onlyRunDirectory(scratch.memDir)
                #expect(dir.blocks.count == 800, "\(dir.blocks.count) block records")
                // 100 blocks of 100 + i bytes, all from one thread, for each of the 8 threads.
                var threadsBySize: [Int: Set<String>] = [:]
                for block in dir.blocks.values { threadsBySize[block.size ?? 0, default: []].insert(block.fields["thread"] ?? "?") }
                #expect(threadsBySize.count == 8 && threadsBySize.values.allSatisfy { $0.count == 1 }
                        && Set(threadsBySize.values.flatMap { $0 }).count == 8, "\(threadsBySize)")
            }
        }

        @Test("aarch64: every leak kind as valgrind classifies it (a lost cycle: one definitely, the other indirectly)")
        func leakKinds() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("leak_kinds", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let expected = Aarch64.expectations(run.stdoutText)
                #expect(expected.count == 19, "\(run.stdoutText)")
                let dir = try onlyRunDirectory(scratch.memDir)
                let check = try String(contentsOf: dir.url.appendingPathComponent("leak-check"), encoding: .utf8)
                var got: [String: String] = [:]
                for line in check.split(separator: "\n") where line.hasPrefix("lost ") {
                    let parts = line.split(separator: " ")
                    got[String(parts[1])] = String(parts[2])
                }
                let wrong = expected.filter { got[$0.key, default: "reachable"] != $0.value }
                #expect(wrong.isEmpty, "want \(wrong), got \(wrong.keys.map { got[$0, default: "reachable"] })\n\(check)")
                #expect(check.contains("result complete"), "\(check)")
            }
        }

        @Test("aarch64: new[]/delete and the other mismatches at their lines, with the allocating family")
        func mismatches() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("mismatch", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                var seen: [String] = []
                for b in report.badFrees {
                    let line = (b.attributed ?? "nil").split(separator: ":").last.map(String.init) ?? "?"
                    seen.append("\(b.kind) \(b.raw["family"] as? String ?? "?") \(b.raw["via"] as? String ?? "?") \(line)")
                }
                let f = "mismatch.cpp"
                let want = [
                    "mismatched-free malloc delete \(try sourceLine(f, "MISMATCH: malloc then delete,"))",
                    "mismatched-free malloc delete[] \(try sourceLine(f, "MISMATCH: malloc then delete[]"))",
                    "mismatched-free new[] delete \(try sourceLine(f, "MISMATCH: new[] then delete,"))",
                    "mismatched-free new[] free \(try sourceLine(f, "MISMATCH: new[] then free"))",
                    "mismatched-free new delete[] \(try sourceLine(f, "MISMATCH: new then delete[]"))",
                    "mismatched-free new free \(try sourceLine(f, "MISMATCH: new then free"))",
                    "mismatched-size new delete \(try sourceLine(f, "MISMATCH: sized"))",
                ]
                #expect(seen.sorted() == want.sorted(), "\(seen)")
            }
        }

        @Test("aarch64: a leak made in a signal handler has the interrupted function below the handler")
        func signalFrame() throws {
            try withScratch { scratch in
                let f = "signal_leak.c"
                let run = try Aarch64.run("signal_leak", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [try location(f, "LEAK: handler"): [64]])
                let frames = try #require(report.leaks.first).frames
                let handlerLine = try location(f, "LEAK: handler")
                let interruptedLine = try location(f, "SIGNAL: interrupted"), mainLine = try location(f, "SIGNAL: main")
                let handler = try #require(frames.firstIndex { frame($0, isAt: handlerLine) }, "\(frames)")
                let interrupted = try #require(frames.firstIndex { frame($0, isAt: interruptedLine) }, "\(frames)")
                let main = try #require(frames.firstIndex { frame($0, isAt: mainLine) }, "\(frames)")
                // Between the handler and interrupted_work: the trampoline (qemu's page, or the
                // vDSO's __kernel_rt_sigreturn), then the interrupted pc itself, in libc's kill,
                // read from the signal frame's sigcontext (not a return address: no frame record).
                #expect(handler < interrupted && interrupted < main, "\(frames)")
                #expect(interrupted - handler == 3 && frames.indices.contains(handler + 2) && frames[handler + 2].hasPrefix("libc.so.6+"), "\(frames)")
            }
        }

        @Test("aarch64 -O2 without frame pointers: every frame of each block's chain, through libc, a signal frame over a leaf, and libstdc++")
        func optimizedChains() throws {
            try withScratch { scratch in
                let f = "unwind_o2.c"
                let run = try Aarch64.run("unwind_o2", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                func at(_ function: String, _ marker: String) throws -> String { "\(function):\(try sourceLine(f, marker))" }
                let want: [Int: [String]] = [
                    24: [try at("make_buffer", "CHAIN: make_buffer"), try at("main", "CHAIN: main make_buffer")],
                    40: [try at("by_key", "CHAIN: by_key"), "libc.so.6", try at("sort_keys", "CHAIN: sort_keys"),
                         try at("main", "CHAIN: main sort_keys")],
                    5: ["libc.so.6", try at("copy_name", "CHAIN: copy_name"), try at("main", "CHAIN: main copy_name")],
                    // The trampoline (qemu-user's page: no module), then the interrupted pc in
                    // the leaf spin, whose caller came from the signal frame's x30.
                    64: [try at("on_signal", "CHAIN: on_signal"), "other", try at("spin", "CHAIN: spin"),
                         try at("main", "CHAIN: main spin")],
                ]
                var got: [Int: [String]] = [:]
                for group in report.leaks where group.blocks == 1 { got[group.bytes] = Aarch64.chain(group, in: f) }
                #expect(got == want, "\(report.leaks.map { "\($0.bytes): \($0.frames)" })")
            }
            try withScratch { scratch in
                let f = "unwind_o2_cxx.cpp"
                let run = try Aarch64.run("unwind_o2_cxx", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                func at(_ function: String, _ marker: String) throws -> String { "\(function):\(try sourceLine(f, marker))" }
                let main = try at("main", "CHAIN: main make_text")
                let want: [Int: [String]] = [
                    32: [try at("make_text", "CHAIN: make_text new"), main],
                    // append's inline part (basic_string.h), then its out-of-line part in the library.
                    61: ["libstdc++.so.6", "basic_string.h", try at("make_text", "CHAIN: make_text append"), main],
                ]
                var got: [Int: [String]] = [:]
                for group in report.leaks where group.blocks == 1 { got[group.bytes] = Aarch64.chain(group, in: f) }
                #expect(got == want, "\(report.leaks.map { "\($0.bytes): \($0.frames)" })")
            }
        }

        @Test("aarch64: the interposer's C unit tests (Examples/unit) pass, built -O2 without frame pointers, under qemu-user")
        func unitProgram() throws {
            try withScratch { scratch in
                let source = InterposerStructure.sourceDirectory
                let program = scratch.root.appendingPathComponent("interposer_unit").path
                // Without frame pointers the unwind unit passes only with the CFI unwinder
                // (-DMEMTRACK_UNWIND_FORCE_FP: "at least three frames: 2").
                let arguments = ["-O2", "-g", "-fomit-frame-pointer", "-D_GNU_SOURCE", "-I", source.path,
                                 "-I", source.appendingPathComponent("include").path,
                                 E2E.examplesSource.appendingPathComponent("unit/interposer_unit.c").path]
                    + InterposerUnit.sources.map { source.appendingPathComponent($0).path }
                    + ["-o", program, "-lpthread", "-ldl", "-rdynamic"]
                let build = runProgram(Aarch64.compiler, arguments, environment: E2E.cleanEnvironment(), timeout: 300)
                try #require(build.exitedNormally && build.status == 0, "\(build.statusDescription):\n\(build.stderrText)")
                let records = scratch.memDir
                try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
                let run = runProgram(Aarch64.qemu, ["-L", Aarch64.sysroot, program, records.path],
                                     environment: E2E.cleanEnvironment(), timeout: 240)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stdoutText)\(run.stderrText)")
                #expect(run.stdoutText.split(separator: "\n").map(String.init) == InterposerUnit.units.map { "ok \($0)" },
                        "\(run.stdoutText)")
            }
        }

        @Test("aarch64: a library opened with RTLD_DEEPBIND is tracked (its GOT's R_AARCH64 relocations patched), now or lazily bound",
              arguments: [["leak"], ["leak", "lazy"], ["free"]])
        func deepBind(arguments: [String]) throws {
            try withScratch { scratch in
                let run = try Aarch64.run("deepbind", arguments, memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                let f = "deepbind_lib.c"
                if arguments[0] == "free" {
                    #expect(report.leaks.isEmpty && report.badFrees.isEmpty,
                            "\(report.leaks.map { $0.attributed ?? "nil" }) \(report.badFrees.map(\.kind))")
                } else {
                    expectResolved(report, [try location(f, "LEAK: strdup"): [5], try location(f, "LEAK: malloc 10"): [10]])
                    #expect(report.badFrees.isEmpty, "\(report.badFrees.map(\.kind))")
                }
            }
        }

        @Test("aarch64: shared memory: an anonymous shared mapping never unmapped, a POSIX segment never unlinked, at their lines")
        func sharedMemory() throws {
            try withScratch { scratch in
                let run = try Aarch64.run("shm_anonymous", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let json = try parseJSON(try memdir(["resolve", scratch.memDir.path, "--json"]))
                let processes = try #require(json["processes"] as? [[String: Any]])
                let mappings = processes.flatMap { ($0["mappings"] as? [[String: Any]]) ?? [] }
                #expect(mappings.count == 1)
                let location = try #require(mappings.first?["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("shm_anonymous.c", "MMAP-ANON")), "\(location)")
            }
            let name = "/memdir-aarch64 \(getpid())"
            defer { _ = shm_unlink(name) }   // qemu-user's shm_open is the host's /dev/shm
            try withScratch { scratch in
                let run = try Aarch64.run("shm_posix", ["leak", name], memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let json = try parseJSON(try memdir(["resolve", scratch.memDir.path, "--json"]))
                let processes = try #require(json["processes"] as? [[String: Any]])
                let segments = processes.flatMap { ($0["segments"] as? [[String: Any]]) ?? [] }
                #expect(segments.count == 1 && segments.first?["name"] as? String == name, "\(segments)")
                let location = try #require(segments.first?["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("shm_posix.c", "SHM-OPEN")), "\(location)")
            }
        }

        @Test("aarch64: a child's leak after fork is in the child's run directory, the parent's in its own")
        func fork() throws {
            try withScratch { scratch in
                let f = "forking.c"
                let run = try Aarch64.run("forking", memDir: scratch.memDir)
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                // The third child execs /bin/true: qemu-user runs the host's, where the aarch64
                // library cannot be preloaded (ld.so says so and goes on); its directory stays empty.
                expectResolved(report, [try location(f, "LEAK: child-exit"): [1111],
                                        try location(f, "LEAK: child-_exit"): [2222],
                                        try location(f, "LEAK: parent"): [3333]])
                let byLine = { (marker: String) in report.processes.filter { !$0.leaks.filter { g in
                    g.attributed.map { frame($0, isAt: (try? location(f, marker)) ?? "") } ?? false }.isEmpty }.map(\.name) }
                let child = byLine("LEAK: child-exit"), parent = byLine("LEAK: parent")
                #expect(child.count == 1 && parent.count == 1 && child != parent, "child \(child), parent \(parent)")
                // As on x86-64: `keep` is a global, so the blocks of the processes that ran exit's
                // leak check are still reachable; _exit runs none.
                let kinds = try ["LEAK: child-exit", "LEAK: child-_exit", "LEAK: parent"].map { try report.leaks(at: location(f, $0)).map(\.kind) }
                #expect(kinds == [["still_reachable"], ["not_classified"], ["still_reachable"]], "\(kinds)")
            }
        }
    }
}
