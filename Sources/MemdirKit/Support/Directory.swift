// Directory.swift: directories read the way a million records want it: readdir with d_type and
// the name used in place (no String per entry), fstatat only when the type is unknown; records
// read relative to their directory's descriptor (readlinkat for format 2, openat/read for
// format 1); and a run directory held open by descriptor for `memdir check`.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

/// An open directory stream, closed when released. A caller that goes on using `descriptor`
/// (or a path through it) keeps the reader alive until then (`withExtendedLifetime`).
final class DirectoryReader {
    private let dir: OpaquePointer
    /// The stream's descriptor, for the *at calls on its entries.
    let descriptor: Int32

    /// opendir(path); `.directoryUnreadable` with the errno text when it fails.
    init(_ path: String) throws(MemdirError) {
        guard let dir = opendir(path) else { throw .directoryUnreadable(path: path, reason: errnoText(errno)) }
        self.dir = dir
        descriptor = dirfd(dir)
    }

    /// The directory `name` below the open directory `parent` (`"."`: itself, listed through a
    /// descriptor of its own); errors name `path`.
    init(at parent: Int32, _ name: String, path: String) throws(MemdirError) {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let dir = fdopendir(fd) else {
            let error = errno
            if fd >= 0 { close(fd) }
            throw .directoryUnreadable(path: path, reason: errnoText(error))
        }
        self.dir = dir
        descriptor = fd
    }

    deinit { closedir(dir) }

    /// The next entry, "." and ".." included; valid until the next call.
    func next() -> Entry? {
        readdir(dir).map { Entry(raw: $0) }
    }

    /// The kind of `entry`: d_type, or an fstatat (no link followed) when the file system does
    /// not give one.
    func kind(of entry: Entry) -> EntryKind {
        entryKind(dir: dir, entry: entry.raw)
    }

    struct Entry {
        fileprivate let raw: UnsafeMutablePointer<dirent>

        /// d_type as memdir cares: nil when the file system does not say.
        var knownKind: EntryKind? {
            switch Int32(raw.pointee.d_type) {
            case Int32(DT_REG): return .file
            case Int32(DT_DIR): return .directory
            case Int32(DT_UNKNOWN): return nil
            default: return .other
            }
        }

        /// The name's first byte (0 for an empty name), read without making a String.
        var firstByte: UInt8 {
            withUnsafePointer(to: &raw.pointee.d_name) { $0.withMemoryRebound(to: UInt8.self, capacity: 1) { $0[0] } }
        }

        /// The name's bytes, without the NUL, in place.
        func withName<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
            withUnsafePointer(to: &raw.pointee.d_name) { ptr in
                ptr.withMemoryRebound(to: UInt8.self, capacity: 256) { name in
                    body(UnsafeBufferPointer(start: name, count: strlen(UnsafeRawPointer(name).assumingMemoryBound(to: CChar.self))))
                }
            }
        }

        var name: String {
            withUnsafePointer(to: &raw.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
        }
    }
}

/// What readlinkat gave for a record.
enum LinkTarget { case length(Int), notALink, missing, failed(Int32) }

/// readlinkat(dirfd, name) into `buffer`, leaving `reserve` bytes free at its end.
func readLinkTarget(directory dirfd: Int32, name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer, reserve: Int) -> LinkTarget {
    let n = readlinkat(dirfd, name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count - reserve)
    if n >= 0 { return .length(n) }
    switch errno {
    case EINVAL: return .notALink
    case ENOENT: return .missing
    case let code: return .failed(code)
    }
}

/// What reading a record file relative to its directory gave.
enum RecordFileRead {
    /// `count` bytes are at the start of the buffer (more than `limit` when the file grew).
    case read(count: Int)
    /// Gone (ENOENT: freed meanwhile) or turned into a symbolic link (ELOOP): not a record now.
    case gone
    case refused(String)
    case failed(Int32)
}

/// Opens `name` in `dirfd` without following a link or blocking (openRecordFile's checks), and
/// reads it into `buffer` (which holds `limit` bytes and at least one more, so growth shows).
func readRecordFile(directory dirfd: Int32, name: UnsafePointer<CChar>, limit: Int,
                    into buffer: UnsafeMutableRawBufferPointer) -> RecordFileRead {
    let opened = openRecordFile({ openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }, limit: limit)
    if let refusal = opened.refusal { return .refused(refusal) }
    let fd = opened.fd
    if fd < 0 { return opened.errno == ENOENT || opened.errno == ELOOP ? .gone : .failed(opened.errno) }
    defer { close(fd) }
    var filled = 0
    while filled < buffer.count {
        let n = retryingEINTR { read(fd, buffer.baseAddress! + filled, buffer.count - filled) }
        if n < 0 { return .failed(errno) }
        if n == 0 { break }
        filled += n
    }
    return .read(count: filled)
}

/// A directory held open by descriptor, opened without following a symbolic link: every later
/// call names its files relative to it, so a link swapped in for it cannot redirect them.
/// Closed when released (a caller reading through `procPath` keeps it alive until then).
final class DirectoryHandle {
    let descriptor: Int32
    let path: String
    /// The directory's owner.
    let owner: UInt32

    init(noFollow path: String) throws(MemdirError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = errno
            if PathStatus(linkAt: path)?.isSymbolicLink == true {
                throw .directoryUnreadable(path: path, reason: "it is a symbolic link; refused")
            }
            throw .directoryUnreadable(path: path, reason: errnoText(error))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let error = errno; close(fd); throw .directoryUnreadable(path: path, reason: errnoText(error)) }
        descriptor = fd
        self.path = path
        owner = st.st_uid
    }

    deinit { close(descriptor) }

    /// The path that reaches the directory through this descriptor.
    var procPath: String { "/proc/self/fd/\(descriptor)" }

    /// Creates (or truncates) `name` with `text`, never through a link; the errno when it fails.
    func createFile(_ name: String, text: String) -> Int32? {
        let fd = openat(descriptor, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return errno }
        writeAll(fd, text)
        close(fd)
        return nil
    }

    /// renameat within the directory; the errno when it fails.
    func rename(_ from: String, to: String) -> Int32? {
        renameat(descriptor, from, descriptor, to) == 0 ? nil : errno
    }

    func remove(_ name: String) { unlinkat(descriptor, name, 0) }

    /// fstatat without following a link: something is there under `name`.
    func contains(_ name: String) -> Bool {
        var st = stat()
        return fstatat(descriptor, name, &st, AT_SYMLINK_NOFOLLOW) == 0
    }
}
