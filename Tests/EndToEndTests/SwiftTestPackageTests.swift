// SwiftTestPackageTests.swift: the default suppressions on a real Swift package's test binary
// (Examples/SwiftTestPackage). XCTest leaves its own tree of objects in every run: a leak-free
// package passes with exactly those blocks suppressed, `--default-suppressions=no` shows them
// (valgrind agrees on each count), and a test that leaks a retain cycle still fails at its lines.

import Foundation
import Testing

enum SwiftTestPackage {
    static var source: URL { E2E.examplesSource.appendingPathComponent("SwiftTestPackage") }

    /// `swift build --build-tests` once per test process, into the build products directory
    /// (a second build of an unchanged package takes a second or two).
    static let build: Result<String, HarnessError> = {
        let scratch: URL
        switch E2E.productsDirectory {
        case .success(let dir): scratch = dir.appendingPathComponent("swift-test-package")
        case .failure(let e): return .failure(e)
        }
        let result = runProgram("/usr/bin/env", ["swift", "build", "--build-tests", "--package-path", source.path,
                                                 "--scratch-path", scratch.path],
                                environment: E2E.cleanEnvironment(), timeout: 600)
        guard result.exitedNormally && result.status == 0 else {
            return .failure(HarnessError("swift build of Examples/SwiftTestPackage failed (\(result.statusDescription)):\n\(result.stderrText)\(result.stdoutText)"))
        }
        return .success(scratch.appendingPathComponent("debug/CounterPackageTests.xctest").path)
    }()

    static func testBinary() throws -> String { try build.get() }
    static let cleanTests = "CounterTests.CleanTests,CounterTests.AsyncTests"
    /// XCTest's own blocks for the clean tests (3 test cases in 2 classes, one stored property):
    /// 2 definitely lost (80 bytes) and 28 indirectly lost (1,875 bytes), as valgrind 3.19 counts them.
    static let xctestBlocks = (definite: 2, definiteBytes: 80, indirect: 28, indirectBytes: 1875)
}

extension EndToEnd {
    @Suite struct SwiftPackageTests {
        func kinds(_ report: ReportView) throws -> [String: [String: Int]] {
            let summary = try #require(report.raw["summary"] as? [String: Any])
            let kinds = try #require(summary["leak_kinds"] as? [String: [String: Any]])
            return kinds.mapValues { $0.compactMapValues { ($0 as? NSNumber)?.intValue } }
        }

        @Test("a clean package's xctest binary passes: exactly XCTest's blocks are suppressed, by the XCTest entries")
        func cleanPackagePasses() throws {
            let binary = try SwiftTestPackage.testBinary()
            let own = SwiftTestPackage.xctestBlocks
            try withScratch { scratch in
                let (run, report) = try runWithJSONFile(scratch, [], binary, [SwiftTestPackage.cleanTests])
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdoutText.contains("Executed 3 tests, with 0 failures"), "\(run.stdoutText)")
                #expect(report.leaks.isEmpty, "\(report.leaks.map { "\($0.kind) \($0.attributed ?? "?")" })")
                let uses = try #require(report.raw["suppressions"] as? [[String: Any]])
                let xctest = uses.filter { ($0["name"] as? String)?.hasPrefix("swift-xctest-") == true }
                #expect(xctest.reduce(0) { $0 + (($1["blocks"] as? Int) ?? 0) } == own.definite + own.indirect, "\(uses)")
                #expect(xctest.reduce(0) { $0 + (($1["bytes"] as? Int) ?? 0) } == own.definiteBytes + own.indirectBytes, "\(uses)")
                #expect(uses.allSatisfy { $0["default"] as? Bool == true && $0["file"] as? String == "(default suppressions)" })
                #expect(run.stderrText.contains("  suppressed by default suppressions: "), "\(run.stderrText)")
                #expect(run.stderrText.contains("\nno leaks, no bad frees in 1 process\n"), "\(run.stderrText)")
            }
        }

        @Test("--default-suppressions=no shows XCTest's blocks, and valgrind counts the same")
        func defaultSuppressionsOff() throws {
            let binary = try SwiftTestPackage.testBinary()
            let own = SwiftTestPackage.xctestBlocks
            try withScratch { scratch in
                let (run, report) = try runWithJSONFile(scratch, ["--default-suppressions=no"], binary, [SwiftTestPackage.cleanTests])
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)")
                let k = try kinds(report)
                #expect(k["definitely_lost"] == ["blocks": own.definite, "bytes": own.definiteBytes], "\(k)")
                #expect(k["indirectly_lost"] == ["blocks": own.indirect, "bytes": own.indirectBytes], "\(k)")
                #expect(k["suppressed"]?["blocks"] == 0)
                #expect(report.leaks.contains { $0.kind == "definitely_lost" && ($0.attributed ?? "").contains("XCTest.XCTMainMisc") })
                #expect(run.stderrText.contains("memdir: exit status 23: \(own.definite) definitely lost, \(own.indirect) indirectly lost"))
                #expect(try memdir(["run", "--default-suppressions", "off", "--", binary]).status == 2)

                guard let valgrind = valgrindForComparison() else { return }
                let reference = runProgram(valgrind, ["--leak-check=full", binary, SwiftTestPackage.cleanTests],
                                           environment: E2E.cleanEnvironment(), currentDirectory: scratch.root, timeout: 300)
                let text = reference.stderrText
                #expect(text.contains("definitely lost: \(own.definiteBytes) bytes in \(own.definite) blocks"), "\(text)")
                #expect(text.contains("indirectly lost: 1,875 bytes in \(own.indirect) blocks"), "\(text)")
            }
        }

        @Test("a test that leaks a retain cycle fails with exit 23 at both allocation lines")
        func retainCycleInATestFails() throws {
            let binary = try SwiftTestPackage.testBinary()
            let first = try location("SwiftTestPackage/Tests/CounterTests/CycleTests.swift", "LEAK: first node")
            let second = try location("SwiftTestPackage/Tests/CounterTests/CycleTests.swift", "LEAK: second node")
            try withScratch { scratch in
                let (run, report) = try runWithJSONFile(scratch, [], binary, ["CounterTests.CycleTests"])
                #expect(run.exitedNormally && run.status == 23, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(report.leaks.map(\.kind).sorted() == ["definitely_lost", "indirectly_lost"],
                        "\(report.leaks.map { "\($0.kind) \($0.attributed ?? "?")" })")
                #expect(report.leaks(at: first).map(\.kind) == ["definitely_lost"], "\(report.leaks.map { $0.attributed ?? "?" })")
                #expect(report.leaks(at: second).map(\.kind) == ["indirectly_lost"])
                #expect(report.leaks.allSatisfy { $0.bytes == 40 && $0.blocks == 1 })
                #expect(run.stderrText.contains("memdir: exit status 23: 1 definitely lost, 1 indirectly lost"), "\(run.stderrText)")
            }
        }

        @Test("memdir run -- swift test: the test bundles are traced and reported, the toolchain is not; clean passes, a retain cycle fails at its lines")
        func swiftTestThroughTheDriver() throws {
            let binary = try SwiftTestPackage.testBinary()
            // The products of the build above: --skip-build runs them through the real driver.
            let products = URL(fileURLWithPath: binary).deletingLastPathComponent().deletingLastPathComponent().path
            let test = ["test", "--package-path", SwiftTestPackage.source.path, "--scratch-path", products, "--skip-build"]
            let first = try location("SwiftTestPackage/Tests/CounterTests/CycleTests.swift", "LEAK: first node")
            let second = try location("SwiftTestPackage/Tests/CounterTests/CycleTests.swift", "LEAK: second node")
            try withScratch { scratch in
                let (clean, cleanReport) = try runWithJSONFile(scratch, [], "swift", test + ["--filter", "CleanTests|AsyncTests"], timeout: 600)
                #expect(clean.exitedNormally && clean.status == 0, "\(clean.statusDescription)\n\(clean.stderrText)")
                #expect(clean.stderrText.contains("memdir: swift test: reporting the "), "\(clean.stderrText)")
                let exes = ((cleanReport.raw["processes"] as? [[String: Any]]) ?? []).compactMap { $0["exe"] as? String }
                #expect(!exes.isEmpty && exes.allSatisfy { $0.hasSuffix("/CounterPackageTests.xctest") }, "only the test runs: \(exes)")
                // No lost block; libdispatch's threads may allocate after the exit check (not classified).
                #expect(cleanReport.leaks.filter { $0.kind != "not_classified" }.isEmpty,
                        "\(cleanReport.leaks.map { "\($0.kind) \($0.attributed ?? "?")" })")

                let (cycle, cycleReport) = try runWithJSONFile(scratch, [], "swift", test + ["--filter", "CycleTests"], timeout: 600)
                #expect(cycle.exitedNormally && cycle.status == 23, "\(cycle.statusDescription)\n\(cycle.stderrText)")
                #expect(cycleReport.leaks(at: first).map(\.kind) == ["definitely_lost"], "\(cycleReport.leaks.map { $0.attributed ?? "?" })")
                #expect(cycleReport.leaks(at: second).map(\.kind) == ["indirectly_lost"])
            }
        }

        @Test("Swift Testing's run of the same binary: only the runtime's caches and libdispatch's threads, all suppressed")
        func swiftTestingRun() throws {
            let binary = try SwiftTestPackage.testBinary()
            try withScratch { scratch in
                let (run, report) = try runWithJSONFile(scratch, ["--show-leak-kinds", "definite,indirect,possible"], binary,
                                                        ["--testing-library", "swift-testing"])
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdoutText.contains("incrementTwice()") || run.stderrText.contains("incrementTwice()"))
                #expect(report.leaks.isEmpty, "\(report.leaks.map { "\($0.kind) \($0.attributed ?? "?")" })")
                let uses = try #require(report.raw["suppressions"] as? [[String: Any]])
                #expect(!uses.isEmpty && uses.allSatisfy { ($0["name"] as? String)?.hasPrefix("swift-xctest-") == false }, "\(uses)")
            }
        }
    }
}
