// Files.swift: the files memdir writes (reports, snapshots, profiles: created before the work so
// a bad path fails first, or replaced atomically), descriptors the user hands it (--xml-fd,
// --json-fd), and module files read at offsets (ELF headers and symbol tables).

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

/// An output file, created (truncated) when opened so that a bad path fails before the work.
struct OutputFile {
    let path: String
    let fd: Int32

    init(_ path: String) throws(MemdirError) {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw .outputUnwritable(path: path, reason: errnoText(errno)) }
        self.path = path
        self.fd = fd
    }

    /// Writes `bytes` and closes the file.
    func save(_ bytes: [UInt8]) throws(MemdirError) {
        defer { close(fd) }
        if let failure = Self.writeBytes(fd, bytes) { throw .outputUnwritable(path: path, reason: errnoText(failure)) }
    }

    /// Writes all of `bytes` to `fd`; the errno of a failure.
    static func writeBytes(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { writeFully(fd, $0) }
    }

    /// Writes `bytes` to a temporary file beside `path`, then renames it into place.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(MemdirError) {
        if let failure = replaceFile(path, with: bytes) { throw .outputUnwritable(path: path, reason: errnoText(failure.errno)) }
    }
}

/// How a descriptor the user named is open.
enum DescriptorMode { case closed, readOnly, writable }

/// fcntl(F_GETFL): whether `fd` is open, and for writing.
func descriptorMode(_ fd: Int32) -> DescriptorMode {
    let flags = fcntl(fd, F_GETFL)
    guard flags >= 0 else { return .closed }
    return flags & O_ACCMODE == O_RDONLY ? .readOnly : .writable
}

/// fcntl(F_GETFD): nil when `fd` is open, else the errno.
func descriptorOpenError(_ fd: Int32) -> Int32? { fcntl(fd, F_GETFD) < 0 ? errno : nil }

func closeDescriptor(_ fd: Int32) { close(fd) }

/// Why replacing a file failed: the step, and its errno.
struct ReplaceFailure: Error {
    enum Step { case open, write, sync, rename }
    var step: Step
    var errno: Int32
    /// The temporary file beside the target (removed by then).
    var temporary: String
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it into place: a
/// reader never sees half a file. Nil on success.
func replaceFile(_ path: String, with bytes: [UInt8]) -> ReplaceFailure? {
    let temporary = path + ".tmp.\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return ReplaceFailure(step: .open, errno: errno, temporary: temporary) }
    var failure: ReplaceFailure?
    if let code = OutputFile.writeBytes(fd, bytes) {
        failure = ReplaceFailure(step: .write, errno: code, temporary: temporary)
    } else if fsync(fd) != 0 {
        failure = ReplaceFailure(step: .sync, errno: errno, temporary: temporary)
    }
    close(fd)
    if failure == nil, rename(temporary, path) != 0 { failure = ReplaceFailure(step: .rename, errno: errno, temporary: temporary) }
    if failure != nil { unlink(temporary) }
    return failure
}

/// A regular file read at offsets (a module file: ELF headers, symbol tables). Opened without
/// blocking (a FIFO planted under a module's name must not stall memdir), links followed
/// (module paths may well be links); only what lies inside the file is read.
final class ReadOnlyFile {
    enum Opened { case file(ReadOnlyFile), failed(Int32), notRegular }

    private let fd: Int32
    let size: UInt64

    private init(fd: Int32, size: UInt64) {
        self.fd = fd
        self.size = size
    }

    deinit { close(fd) }

    static func opening(_ path: String) -> Opened {
        let fd = retryingEINTR { open(path, readFlags(followLinks: true)) }
        guard fd >= 0 else { return .failed(errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let code = errno; close(fd); return .failed(code) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { close(fd); return .notRegular }
        return .file(ReadOnlyFile(fd: fd, size: UInt64(max(0, st.st_size))))
    }

    /// `count` bytes at `offset`, or nil when they are not all inside the file or a read fails.
    func bytes(at offset: UInt64, count: Int) -> [UInt8]? {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else { return nil }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n <= 0 { return nil }
            done += n
        }
        return buffer
    }
}
