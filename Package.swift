// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "memdir",
    products: [
        // The interposer loaded with LD_PRELOAD: .build/<config>/libmemtrack.so
        .library(name: "memtrack", type: .dynamic, targets: ["MemtrackInterposer"]),
        .executable(name: "memdir", targets: ["memdir"]),
    ],
    targets: [
        // C only: libc, libdl and pthreads. Never links the Swift runtime.
        .target(
            name: "MemtrackInterposer",
            exclude: ["link"],
            cSettings: [
                .define("_GNU_SOURCE"),
                // Frame pointers in our own frames make the first unwinding step cheap.
                .unsafeFlags(["-fno-omit-frame-pointer", "-fvisibility=hidden", "-O2"]),
            ],
            linkerSettings: [
                .linkedLibrary("dl"), .linkedLibrary("pthread"),
                // Keep the Swift, C++ and math runtimes out of libmemtrack.so (see link/libm.so).
                .unsafeFlags(["-nostartfiles", "-static-stdlib", "-L", "Sources/MemtrackInterposer/link"]),
            ]
        ),
        // Scan, parse, group, resolve and render: everything memdir knows.
        .target(name: "MemdirKit"),
        // The thin command line over MemdirKit.
        .executableTarget(name: "memdir", dependencies: ["MemdirKit"]),
        .testTarget(name: "MemdirKitTests", dependencies: ["MemdirKit"]),
        // Runs the built memdir and libmemtrack.so on the programs in Examples/.
        .testTarget(name: "EndToEndTests", dependencies: ["MemdirKit"]),
    ]
)
