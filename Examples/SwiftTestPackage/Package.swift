// swift-tools-version:6.0
// A Swift package whose tests memdir's end-to-end tests run (SwiftTestPackageTests): its own
// package, built with --scratch-path in the build products directory, never part of memdir's.
import PackageDescription

let package = Package(
    name: "Counter",
    targets: [
        .target(name: "Counter"),
        .testTarget(name: "CounterTests", dependencies: ["Counter"]),
    ]
)
