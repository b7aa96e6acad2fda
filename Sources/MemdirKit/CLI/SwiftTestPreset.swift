// SwiftTestPreset.swift: `memdir run -- swift test`: what a Swift developer means by it is "check my
// tests", not "check the package manager". The test bundles are children of the driver, so they
// are traced (as with --trace-children=yes), the toolchain's compilers, linkers and the manifest
// runner are skipped, and the report shows the test processes only; the driver's own records are
// kept in the directory but neither shown nor gated. An explicit --trace-children or
// --trace-children-skip turns the preset off.

struct SwiftTestPreset {
    /// The skip patterns: everything in the toolchain and the system's binaries, and the
    /// package manifest's runner.
    let skipPatterns: String

    /// The preset for `program` (argv) resolved to `path`, or nil when it is not `swift test`.
    init?(program: [String], path: String) {
        let name = baseName(path)
        let isTest = (name == "swift" || name == "swift-driver") && program.dropFirst().first == "test"
            || name == "swift-test"
        guard isTest else { return nil }
        // /opt/swift/usr/bin/swift -> /opt/swift/usr/*: swift-frontend, clang, the linker and
        // swift-build's helpers all live under the toolchain's usr.
        let bin = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let usr = String(bin[..<(bin.lastIndex(of: "/") ?? bin.startIndex)])
        skipPatterns = [usr.isEmpty ? nil : usr + "/*", "/usr/bin/*", "/bin/*", "/usr/lib/*", "*-manifest"]
            .compactMap { $0 }.joined(separator: ",")
    }

    /// Whether a traced process is one of the test runs (the bundle, run for XCTest and again for
    /// Swift Testing, or SwiftPM's testing helper).
    static func isTestProcess(_ exe: String) -> Bool {
        exe.hasSuffix(".xctest") || baseName(exe).hasPrefix("swiftpm-testing-helper")
    }
}
