// SourceLayoutTests.swift: MemdirKit's layout by stage (issue 19): every Swift file sits in one
// of the stage folders, and only Support/ speaks to libc (imports Glibc, Musl or Darwin).

import Foundation
import Testing

@Suite("Source layout")
struct SourceLayoutTests {
    /// The folders of Sources/MemdirKit, in pipeline order; Pipeline/ names the stages.
    static let stages: Set<String> = ["Records", "Analysis", "Output", "Live", "Support", "CLI", "Pipeline"]
    /// The one folder that may import the C library.
    static let system = "Support"

    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/MemdirKit")
    }

    /// Every .swift file below Sources/MemdirKit, as a path relative to it (a DocC catalog's
    /// files are documentation, not code: left out).
    static func swiftFiles() throws -> [String] {
        let root = sources.path
        let all = try #require(FileManager.default.subpathsOfDirectory(atPath: root) as [String]?)
        return all.filter { $0.hasSuffix(".swift") && !$0.split(separator: "/").contains { $0.hasSuffix(".docc") } }.sorted()
    }

    /// The lines of `text` that bring in the C library: `import Glibc` (with attributes such as
    /// `@preconcurrency`, or `import func Glibc.open`), and `canImport(Glibc)` conditions; the
    /// same for Musl and Darwin. `import Foundation` is not one.
    static func libcLines(_ text: String) -> [String] {
        let module = "(Glibc|Musl|Darwin)"
        let patterns = [
            "^\\s*(@\\w+\\s+)*import\\s+((typealias|struct|class|enum|protocol|let|var|func)\\s+)?\(module)(\\.|\\s|$)",
            "canImport\\(\\s*\(module)\\s*\\)",
        ].map { try! NSRegularExpression(pattern: $0) }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { line in
            let code = line.components(separatedBy: "//").first ?? line
            let range = NSRange(code.startIndex..., in: code)
            return patterns.contains { $0.firstMatch(in: code, range: range) != nil }
        }
    }

    @Test("the detector sees every form of a libc import and nothing else")
    func detector() {
        let imports = ["import Glibc", "@preconcurrency import Glibc", "  import Musl", "import Darwin", "import func Glibc.open",
                       "#if canImport(Glibc)", "#elseif canImport(Musl)", "@_exported import Glibc"]
        for line in imports { #expect(Self.libcLines(line) == [line], "\(line)") }
        let others = ["import Foundation", "import Dispatch", "import GlibcExtras", "// import Glibc is for Support/ only",
                      "let glibc = \"Glibc\"", "@testable import MemdirKit"]
        for line in others { #expect(Self.libcLines(line).isEmpty, "\(line)") }
    }

    @Test("every Swift file of MemdirKit sits in a stage folder")
    func stageFolders() throws {
        let files = try Self.swiftFiles()
        // The scan found the target (not an empty or wrong directory): System.swift is where it belongs.
        #expect(files.contains("Support/System.swift"))
        #expect(files.count > 40, "\(files.count) files found under \(Self.sources.path)")
        let misplaced = files.filter { file in
            let parts = file.split(separator: "/")
            return parts.count < 2 || !Self.stages.contains(String(parts[0]))
        }
        #expect(misplaced.isEmpty, "not in a stage folder (\(Self.stages.sorted().joined(separator: ", "))): \(misplaced)")
    }

    @Test("only Support/ imports Glibc (or Musl, Darwin)")
    func libcOnlyInSupport() throws {
        let files = try Self.swiftFiles()
        var offenders: [String] = []
        var supportImports = 0
        for file in files {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            let lines = Self.libcLines(text)
            if file.hasPrefix(Self.system + "/") {
                supportImports += lines.isEmpty ? 0 : 1
            } else if !lines.isEmpty {
                offenders.append("\(file): \(lines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | "))")
            }
        }
        #expect(offenders.isEmpty, "libc outside Support/: \(offenders.joined(separator: "; "))")
        // The executable is only a start: it imports MemdirKit and nothing else.
        let main = try String(contentsOf: Self.sources.deletingLastPathComponent().appendingPathComponent("memdir/main.swift"), encoding: .utf8)
        #expect(Self.libcLines(main).isEmpty, "Sources/memdir/main.swift: \(Self.libcLines(main))")
        // Support/ does speak to libc: the scan reads what it should.
        #expect(supportImports > 0)
    }
}
