// ReleaseArchiveTests.swift: the release archive made by `.ci/release`, unpacked into a fresh
// prefix and run with a PATH that holds no Swift toolchain, as a user without one would.
//
// Building the archive is a release build of its own (about a minute), so the suite does not
// make it: `.ci/run` does, with README's command, and names it in MEMDIR_RELEASE_ARCHIVE. Under
// CI a missing archive is a failure; on a developer's machine the test says how to run it.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let archivePath = ProcessInfo.processInfo.environment["MEMDIR_RELEASE_ARCHIVE"]
private let underCI = ProcessInfo.processInfo.environment["CI"] == "true"

extension EndToEnd {
    @Suite struct ReleaseArchive {
        @Test("the archive unpacked in a fresh prefix: memdir without the toolchain reports a leak at its file:line",
              .enabled(if: archivePath != nil || underCI, "set MEMDIR_RELEASE_ARCHIVE=$(bash .ci/release) to run it"))
        func unpackedArchive() throws {
            let archive = try #require(archivePath, "CI must build the archive (.ci/run sets MEMDIR_RELEASE_ARCHIVE)")
            let name = URL(fileURLWithPath: archive).lastPathComponent
            #expect(name.hasPrefix("memdir-") && name.hasSuffix("-linux-\(machine()).tar.gz"), "\(name)")
            try withScratch { scratch in
                let prefix = try unpackArchive(archive, in: scratch)
                let memdirPath = prefix.appendingPathComponent("bin/memdir").path
                for file in ["bin/memdir", "lib/memdir/libmemtrack.so", "share/man/man1/memdir.1",
                             "share/bash-completion/completions/memdir", "share/zsh/site-functions/_memdir",
                             "share/fish/vendor_completions.d/memdir.fish"] {
                    #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(file).path), "\(file) is missing")
                }
                // No Swift runtime, Foundation or Dispatch library is needed.
                let ldd = runPlain("/usr/bin/ldd", [memdirPath])
                #expect(ldd.status == 0, "\(ldd.stderrText)")
                for library in ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime"] {
                    #expect(!ldd.stdoutText.contains(library), "\(ldd.stdoutText)")
                }

                // A leaky program in a directory of its own, run as README's install section says.
                let leaky = scratch.root.appendingPathComponent("leaky")
                try FileManager.default.copyItem(atPath: try E2E.example("seeds"), toPath: leaky.path)
                let path = "\(prefix.path)/bin:/usr/bin:/bin"
                let run = runProgram("/usr/bin/env", ["-i", "PATH=\(path)", "memdir", "run", "--", "./leaky"],
                                     environment: [:], currentDirectory: scratch.root)
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)\n\(run.stderrText)")
                let leakLine = try location("seeds.c", "LEAK: p3")
                #expect(run.stderrText.contains("definitely lost: 1 block, 30 bytes at main ") && run.stderrText.contains(leakLine),
                        "\(run.stderrText)")
                // The records a failed run keeps (in /dev/shm: env -i leaves no TMPDIR), not left behind.
                if let kept = run.stderrText.split(separator: "\n").first(where: { $0.hasPrefix("memdir: records kept in ") }) {
                    try? FileManager.default.removeItem(atPath: String(kept.dropFirst("memdir: records kept in ".count)))
                }
                let which = runProgram("/usr/bin/env", ["-i", "PATH=\(path)", "sh", "-c", "command -v swift swiftc || echo none"],
                                       environment: [:])
                #expect(which.stdoutText == "none\n", "the PATH holds no Swift toolchain: \(which.stdoutText)")

                let version = runProgram(memdirPath, ["--version"], environment: [:])
                let number = version.stdoutText.split(separator: "\n").first?.split(separator: " ").last.map(String.init) ?? "?"
                #expect(name == "memdir-\(number)-linux-\(machine()).tar.gz", "\(version.stdoutText)")
            }
        }
    }
}

/// A release archive unpacked into `prefix` in the scratch directory, as README's install
/// command does (`tar -xzf … --strip-components=1`); the prefix.
func unpackArchive(_ archive: String, in scratch: Scratch, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
    let prefix = scratch.root.appendingPathComponent("prefix")
    try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
    let untar = runPlain("/bin/tar", ["-xzf", archive, "--strip-components=1", "-C", prefix.path])
    #expect(untar.status == 0, "\(untar.stderrText)", sourceLocation: sourceLocation)
    return prefix
}

private func machine() -> String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}
