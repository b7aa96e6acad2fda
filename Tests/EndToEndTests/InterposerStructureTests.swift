// InterposerStructureTests.swift: the shape of libmemtrack.so, read from the built library and
// from the interposer's own sources (issue 19).
//   - No relocation of the library names a symbol it exports itself: the tracker's own mmap,
//     munmap, sigaction, dlopen, malloc... never run through its own wrappers (or through a
//     program's definition of those names). Checked on the SwiftPM build and on README's plain
//     compiler line, with gcc and, when installed, aarch64-linux-gnu-gcc.
//   - Nothing internal is exported: every exported memtrack_ name is one memtrack.h declares.

import Foundation
import Testing

enum InterposerStructure {
    static let sourceDirectory = E2E.packageRoot.appendingPathComponent("Sources/MemtrackInterposer")
    static let crossCompiler = "/usr/bin/aarch64-linux-gnu-gcc"

    static func readelf(_ arguments: [String]) throws -> String {
        let result = runProgram("/usr/bin/readelf", ["-W"] + arguments, environment: E2E.cleanEnvironment(), timeout: 60)
        guard result.exitedNormally && result.status == 0 else {
            throw HarnessError("readelf \(arguments.joined(separator: " ")) failed (\(result.statusDescription)): \(result.stderrText)")
        }
        return result.stdoutText
    }

    /// Names the library defines with global or weak binding in its dynamic symbol table.
    static func exports(_ library: String) throws -> Set<String> {
        var names = Set<String>()
        for line in try readelf(["--dyn-syms", library]).split(separator: "\n") {
            // Num: Value Size Type Bind Vis Ndx Name
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, fields[0].hasSuffix(":"), fields[6] != "UND", fields[4] != "LOCAL" else { continue }
            names.insert(String(fields[7].split(separator: "@").first ?? fields[7]))
        }
        return names
    }

    /// Every relocation that names a symbol: (type, name).
    static func namedRelocations(_ library: String) throws -> [(type: String, name: String)] {
        var found: [(String, String)] = []
        for line in try readelf(["-r", library]).split(separator: "\n") {
            // Offset Info Type Symbol's-Value Symbol's-Name + Addend
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, fields[0].allSatisfy(\.isHexDigit), fields[2].hasPrefix("R_") else { continue }
            found.append((String(fields[2]), String(fields[4].split(separator: "@").first ?? fields[4])))
        }
        return found
    }

    /// Relocations against the library's own exports, as "TYPE name" lines.
    static func selfRelocations(_ library: String) throws -> [String] {
        let exported = try exports(library)
        #expect(exported.contains("malloc") && exported.contains("mmap") && exported.contains("sigaction"),
                "the export list of \(library) was not read: \(exported.sorted())")
        return try namedRelocations(library).filter { exported.contains($0.name) }.map { "\($0.type) \($0.name)" }
    }

    /// README's one-line build of the interposer with `compiler`, into `directory`.
    static func plainBuild(_ compiler: String, into directory: URL) throws -> String {
        let sources = (FileManager.default.enumerator(atPath: sourceDirectory.path)?
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".c") }.sorted() ?? [])
            .map { "Sources/MemtrackInterposer/" + $0 }
        let output = directory.appendingPathComponent("libmemtrack-plain.so").path
        let arguments = ["-shared", "-fPIC", "-O2", "-D_GNU_SOURCE", "-fvisibility=hidden", "-I", "include"] + sources
            + ["-ldl", "-lpthread", "-o", output]
        let result = runProgram(compiler, arguments, environment: E2E.cleanEnvironment(),
                                currentDirectory: E2E.packageRoot, timeout: 300)
        guard result.exitedNormally && result.status == 0 else {
            throw HarnessError("\(compiler) failed (\(result.statusDescription)):\n\(result.stderrText)")
        }
        return output
    }
}

extension EndToEnd {
    @Suite struct InterposerStructureTests {
        @Test("libmemtrack.so (SwiftPM build) has no relocation against a name it exports")
        func noSelfRelocationsSwiftPM() throws {
            let offenders = try InterposerStructure.selfRelocations(try E2E.library())
            #expect(offenders.isEmpty, "relocations against the library's own exports: \(offenders.joined(separator: ", "))")
        }

        @Test("README's plain gcc build has no relocation against a name it exports")
        func noSelfRelocationsGcc() throws {
            try withScratch { scratch in
                let library = try InterposerStructure.plainBuild("/usr/bin/gcc", into: scratch.root)
                let offenders = try InterposerStructure.selfRelocations(library)
                #expect(offenders.isEmpty, "relocations against the library's own exports: \(offenders.joined(separator: ", "))")
            }
        }

        @Test("README's plain aarch64 build has no relocation against a name it exports",
              .enabled(if: FileManager.default.isExecutableFile(atPath: InterposerStructure.crossCompiler),
                       "needs aarch64-linux-gnu-gcc (.ci/run installs it)"))
        func noSelfRelocationsAarch64() throws {
            try withScratch { scratch in
                let library = try InterposerStructure.plainBuild(InterposerStructure.crossCompiler, into: scratch.root)
                let offenders = try InterposerStructure.selfRelocations(library)
                #expect(offenders.isEmpty, "relocations against the library's own exports: \(offenders.joined(separator: ", "))")
            }
        }

        @Test("every exported memtrack_ name is one include/memtrack.h declares (internal symbols stay hidden)")
        func onlyDeclaredNamesExported() throws {
            let header = try String(contentsOf: InterposerStructure.sourceDirectory.appendingPathComponent("include/memtrack.h"),
                                    encoding: .utf8)
            let exported = try InterposerStructure.exports(try E2E.library()).filter { $0.hasPrefix("memtrack_") }
            #expect(exported.contains("memtrack_check"), "\(exported.sorted())")
            let undeclared = exported.filter { !header.contains(" \($0)(") }.sorted()
            #expect(undeclared.isEmpty, "exported but not in memtrack.h: \(undeclared)")
        }
    }
}
