// System.swift: the thin layer over libc that memdir needs: errno text and names, whole-file
// reads, directory listing with readdir/d_type, paths, clocks and processes. Support/ is the one
// folder that imports the C library (SourceLayoutTests says so); beside this file: Directory
// (records read by descriptor), Files (what memdir writes), Subprocess (spawning), Terminal
// (watch), Lock, Demangler and Cleanup. Everything above them speaks Swift types and MemdirError.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("unsupported platform")
#endif

/// The text of an errno value, e.g. "No such file or directory".
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Calls `body` again while it fails with EINTR (swift-system's retry rule).
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

/// Kind of a directory entry as far as memdir cares.
enum EntryKind { case file, directory, other }

struct DirectoryEntry {
    var name: String
    var kind: EntryKind
}

/// Lists a directory with opendir/readdir, using d_type and stat-ing only when the type is unknown.
/// "." and ".." are left out. Throws `.directoryUnreadable` with the errno text.
func listDirectory(_ path: String) throws(MemdirError) -> [DirectoryEntry] {
    guard let dir = opendir(path) else {
        throw .directoryUnreadable(path: path, reason: errnoText(errno))
    }
    defer { closedir(dir) }
    var entries: [DirectoryEntry] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name == "." || name == ".." { continue }
        entries.append(DirectoryEntry(name: name, kind: entryKind(dir: dir, entry: entry)))
    }
    return entries
}

/// The d_type of an entry, or an fstatat on the directory when the file system does not give one.
func entryKind(dir: OpaquePointer, entry: UnsafeMutablePointer<dirent>) -> EntryKind {
    switch Int32(entry.pointee.d_type) {
    case Int32(DT_REG): return .file
    case Int32(DT_DIR): return .directory
    case Int32(DT_UNKNOWN):
        var st = stat()
        let ok = withUnsafePointer(to: &entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) {
                fstatat(dirfd(dir), $0, &st, AT_SYMLINK_NOFOLLOW) == 0
            }
        }
        guard ok else { return .other }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    default: return .other
    }
}

/// Reads a whole (small) file as UTF-8 text, or gives the errno of the failure, or why it was
/// refused (`rejected`): not a regular file, or larger than `limit` bytes.
enum FileRead { case success(String), failure(Int32), rejected(String) }

/// The same for bytes.
enum BytesRead { case success([UInt8]), failure(Int32), rejected(String) }

/// Opens a record file without hanging and without following a symbolic link: O_NONBLOCK, so a
/// FIFO planted under a record's name cannot stall the reader, then fstat: anything but a
/// regular file, or a file larger than `limit`, is refused before a byte is read.
func openRecordFile(_ open: () -> Int32, limit: Int) -> (fd: Int32, refusal: String?, errno: Int32) {
    let fd = retryingEINTR { open() }
    guard fd >= 0 else { return (-1, nil, errno) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { let code = errno; close(fd); return (-1, nil, code) }
    if (st.st_mode & S_IFMT) != S_IFREG { close(fd); return (-1, "not a regular file", 0) }
    if Int(st.st_size) > limit { close(fd); return (-1, "record too large (\(st.st_size) bytes; at most \(limit))", 0) }
    return (fd, nil, 0)
}

/// The open flags of every file memdir reads: never blocks (a FIFO), never a controlling
/// terminal, and follows no symbolic link unless asked (a file the user names may be one).
func readFlags(followLinks: Bool) -> Int32 {
    O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (followLinks ? 0 : O_NOFOLLOW)
}

/// Sizes for files that are not records: what a user hands memdir (suppressions, snapshots,
/// watch histories), the tracker's answers, and /proc files.
enum FileLimit {
    static let userFile = 256 * 1024 * 1024
    /// A saved snapshot or a watch history is parsed whole into a JSON tree (about 10 times
    /// its size in memory): 64 MiB holds a million groups of a frame each.
    static let jsonFile = 64 * 1024 * 1024
    static let procFile = 16 * 1024 * 1024
}

/// Reads at most `limit` bytes of a regular file (see `openRecordFile`), in 64 KiB reads: a
/// file that grows past the limit while it is read is refused, never read further.
func readBytes(_ path: String, limit: Int, followLinks: Bool = false) -> BytesRead {
    let opened = openRecordFile({ open(path, readFlags(followLinks: followLinks)) }, limit: limit)
    if let refusal = opened.refusal { return .rejected(refusal) }
    guard opened.fd >= 0 else { return .failure(opened.errno) }
    let fd = opened.fd
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { buf in
            retryingEINTR { read(fd, buf.baseAddress, buf.count) }
        }
        if n < 0 { return .failure(errno) }
        if n == 0 { break }
        if bytes.count + n > limit { return .rejected("record too large (more than \(limit) bytes)") }   // it grew
        bytes.append(contentsOf: chunk[0..<n])
    }
    return .success(bytes)
}

/// `followLinks`: for files the user names (a suppressions file may well be a symlink); records
/// are never followed.
func readTextFile(_ path: String, limit: Int, followLinks: Bool = false) -> FileRead {
    switch readBytes(path, limit: limit, followLinks: followLinks) {
    case .success(let bytes): return .success(String(decoding: bytes, as: UTF8.self))
    case .failure(let code): return .failure(code)
    case .rejected(let why): return .rejected(why)
    }
}

/// Streams a line-oriented record: `body` gets each line (without its newline) and whether a
/// newline ended it (only the last line may lack one: a write cut short); it returns false to
/// stop. Memory stays at one 64 KiB buffer plus one line: a line longer than `maxLine` bytes
/// is refused at once (a sparse file of zeros is one endless line), as is a file over `limit`.
enum LineRead { case done, failure(Int32), rejected(String) }

func forEachLine(_ path: String, limit: Int, maxLine: Int,
                 _ body: (UnsafeRawBufferPointer, _ terminated: Bool) throws(MemdirError) -> Bool) throws(MemdirError) -> LineRead {
    let opened = openRecordFile({ open(path, readFlags(followLinks: false)) }, limit: limit)
    if let refusal = opened.refusal { return .rejected(refusal) }
    guard opened.fd >= 0 else { return .failure(opened.errno) }
    let fd = opened.fd
    defer { close(fd) }
    let chunkSize = 65536
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize + maxLine + 1, alignment: 16)
    defer { buffer.deallocate() }
    var kept = 0          // bytes of an unfinished line at the start of the buffer
    var total = 0
    while true {
        let n = retryingEINTR { read(fd, buffer.baseAddress! + kept, chunkSize) }
        if n < 0 { return .failure(errno) }
        total += n
        if total > limit { return .rejected("record too large (more than \(limit) bytes)") }
        let end = kept + n
        if n == 0 {
            if kept > 0 { _ = try body(UnsafeRawBufferPointer(rebasing: buffer[0..<kept]), false) }
            return .done
        }
        var start = 0
        var i = kept
        while i < end {
            if buffer[i] == 10 {
                guard try body(UnsafeRawBufferPointer(rebasing: buffer[start..<i]), true) else { return .done }
                start = i + 1
            }
            i += 1
        }
        kept = end - start
        if kept > maxLine { return .rejected("line longer than \(maxLine) bytes") }
        if kept > 0 && start > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + start, kept) }
    }
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

/// A regular file, after following links (module paths may well be symlinks).
func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// The last path component, as `basename` prints it for a plain path.
func baseName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// A String from a NUL-terminated C buffer.
func string(fromNulTerminated buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.count
    return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Writes all of `bytes` to a file descriptor, again after a short write or EINTR; the errno
/// of a failure (EIO when write(2) wrote nothing), nil when all of it went out.
func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let n = retryingEINTR { write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
        if n < 0 { return errno }
        if n == 0 { return EIO }
        offset += n
    }
    return nil
}

/// Writes all of `text` to a file descriptor (stdout/stderr of the tool).
func writeAll(_ fd: Int32, _ text: String) {
    var text = text
    _ = text.withUTF8 { writeFully(fd, UnsafeRawBufferPointer($0)) }
}

extension String {
    /// The text with control characters (C0, DEL, C1) written as `\xHH` (`\n`, `\t` for newline and
    /// tab), so a file or program name cannot forge lines or drive the terminal when printed.
    public var printable: String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            switch scalar.value {
            case 0x0a: out += "\\n"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7f...0x9f: out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

// MARK: - errno values the layers above tell apart

/// The errno values memdir's code above this layer compares with (`case .failure(Errno.noEntry)`),
/// named here so that no other file needs libc for them.
enum Errno {
    static let noEntry = ENOENT
    static let loop = ELOOP
    static let invalid = EINVAL
    static let io = EIO
    static let accessDenied = EACCES
}

// MARK: - the process, its environment and clocks

/// `getenv(name)`: the variable as the process sees it now (currentEnvironment() copies them all).
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// exit(3): flushes nothing of memdir's (it writes with write(2)) and ends the process.
func exitProcess(_ status: Int32) -> Never { exit(status) }

/// This process's pid.
func currentProcessID() -> Int32 { getpid() }

/// This process's real user id.
func currentUserID() -> UInt32 { getuid() }

/// kill(pid, 0) failed with ESRCH: no such process (any more).
func processIsGone(_ pid: Int32) -> Bool { kill(pid, 0) != 0 && errno == ESRCH }

/// kill(pid, 0) succeeded, or the process exists but belongs to someone else (EPERM).
func processIsAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

/// The wall clock in ms since the epoch (CLOCK_REALTIME).
func realtimeMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// The wall clock in whole seconds since the epoch, as time(2) gives it.
func unixTimeSeconds() -> Int { Int(time(nil)) }

/// Hours, minutes and seconds (UTC) of a unix time in seconds.
func utcTimeOfDay(_ unixSeconds: Int) -> (hour: Int32, minute: Int32, second: Int32) {
    var t = time_t(unixSeconds)   // a time_t is an Int: no conversion can trap
    var parts = tm()
    gmtime_r(&t, &parts)
    return (parts.tm_hour, parts.tm_min, parts.tm_sec)
}

/// User and system CPU time of this process (every thread), in ms.
func processCPUMilliseconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
}

/// Sleeps `milliseconds` with poll(2); a signal may cut it short.
func waitMilliseconds(_ milliseconds: Int32) { _ = poll(nil, 0, milliseconds) }

/// Sleeps `milliseconds` with nanosleep(2); a signal cuts it short (the caller then looks at its flag).
func sleep(milliseconds: Int) {
    var pause = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    nanosleep(&pause, nil)
}

// MARK: - paths

/// realpath(3): the absolute path with every link resolved; nil when it cannot be resolved.
func realPath(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    return realpath(path, &buffer) != nil ? string(fromNulTerminated: buffer) : nil
}

/// getcwd(3); nil when it cannot be read (removed, or too long).
func currentDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    return getcwd(&buffer, buffer.count) != nil ? string(fromNulTerminated: buffer) : nil
}

/// readlink(2) of `path`; nil when it is not a link or cannot be read.
func symbolicLinkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return string(fromNulTerminated: Array(buffer[0..<n]) + [0])
}

/// access(path, F_OK): the path exists (links followed).
func pathExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// access(path, W_OK | X_OK): files can be made in the directory `path`. The errno when not.
func directoryWritable(_ path: String) -> Int32? { access(path, W_OK | X_OK) == 0 ? nil : errno }

/// What lstat(2) says of a path: a directory, its owner and when it last changed.
struct PathStatus {
    var isDirectory: Bool
    var isSymbolicLink: Bool
    var owner: UInt32
    var modifiedUnixSeconds: Int

    /// lstat: a link is described, not followed. Nil when it cannot be read.
    init?(linkAt path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        self.init(st)
    }

    /// stat: links followed.
    init?(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(st)
    }

    private init(_ st: stat) {
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        isSymbolicLink = (st.st_mode & S_IFMT) == S_IFLNK
        owner = st.st_uid
        modifiedUnixSeconds = Int(st.st_mtim.tv_sec)
    }
}

/// mkdir(path, mode); the errno when it fails.
func makeDirectory(_ path: String, mode: UInt32) -> Int32? { mkdir(path, mode_t(mode)) == 0 ? nil : errno }

/// mkdtemp(3) of `template` (ending in XXXXXX): the new directory's path, or the errno.
func makeTemporaryDirectory(_ template: String) -> (path: String?, errno: Int32) {
    var bytes = Array(template.utf8CString)
    guard mkdtemp(&bytes) != nil else { return (nil, errno) }
    return (string(fromNulTerminated: bytes), 0)
}

/// Creates `path` (O_EXCL: never one that exists) with `text` in it; false when it could not.
@discardableResult
func createExclusiveFile(_ path: String, mode: UInt32, text: String) -> Bool {
    let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode)) }
    guard fd >= 0 else { return false }
    writeAll(fd, text)
    close(fd)
    return true
}

/// The length of a NUL-terminated name (a directory entry's, a record's).
func cStringLength(_ name: UnsafePointer<CChar>) -> Int { strlen(name) }

/// isatty(fd).
func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }
