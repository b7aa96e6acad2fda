// Demangler.swift: C++ and Swift names as people read them, from the two demanglers already in
// the process: libstdc++'s __cxa_demangle (found with dlsym) and the Swift runtime's
// swift_demangle. Both hand back malloc'd C strings: freed here, the one place that calls libc.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

@_silgen_name("swift_demangle")
private func _swift_demangle(
    _ mangledName: UnsafePointer<CChar>?, _ mangledNameLength: Int,
    _ outputBuffer: UnsafeMutablePointer<CChar>?, _ outputBufferSize: UnsafeMutablePointer<Int>?,
    _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?

public enum Demangler {
    /// Whether `name` looks like a mangled Swift symbol.
    public static func isSwiftMangled(_ name: String) -> Bool {
        ["$s", "_$s", "$S", "_$S", "$e", "_$e", "_T0"].contains { name.hasPrefix($0) }
    }

    /// The demangled C++ or Swift name, or `name` unchanged when it is neither.
    public static func demangle(_ name: String) -> String {
        if name.hasPrefix("_Z") { return demangleCxx(name) ?? name }
        guard isSwiftMangled(name) else { return name }
        let utf8 = Array(name.utf8CString)
        guard let result = utf8.withUnsafeBufferPointer({ _swift_demangle($0.baseAddress, utf8.count - 1, nil, nil, 0) }) else {
            return name
        }
        defer { free(result) }
        return String(cString: result)
    }
}

extension Demangler {
    typealias CxaDemangle = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?,
                                            UnsafeMutablePointer<Int>?, UnsafeMutablePointer<Int32>?) -> UnsafeMutablePointer<CChar>?

    /// libstdc++'s demangler, already loaded with the Swift runtime (found with dlsym, so memdir
    /// does not link it itself). It is the same code as `addr2line -C`; addr2line runs without
    /// -C so the linkage name is kept for suppressions.
    static let cxaDemangle: CxaDemangle? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__cxa_demangle")
        .map { unsafeBitCast($0, to: CxaDemangle.self) }

    static func demangleCxx(_ name: String) -> String? {
        guard let cxaDemangle else { return nil }
        var status: Int32 = 0
        guard let result = name.withCString({ cxaDemangle($0, nil, nil, &status) }), status == 0 else { return nil }
        defer { free(result) }
        return String(cString: result)
    }
}
