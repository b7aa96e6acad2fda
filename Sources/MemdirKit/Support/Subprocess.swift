// Subprocess.swift: spawning tools (addr2line) with an argv array, never a shell string.
// stdin is fed from one thread while stdout and stderr are drained concurrently, so a tool
// that writes a lot before reading all its input can never deadlock us.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import Dispatch

public struct SubprocessResult: Sendable {
    /// Exit status, or 128+signal.
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
}

/// The environment as a dictionary.
func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        p += 1
    }
    return result
}

/// Finds `name` the way execvp does: as given if it contains a slash, else along PATH.
/// Returns the first executable match, or the first existing non-executable one.
public func findExecutable(_ name: String, path: String? = nil) -> (path: String, executable: Bool)? {
    if name.contains("/") {
        guard fileExists(name) else { return nil }
        return (name, access(name, X_OK) == 0 && !isDirectory(name))
    }
    let searchPath = path ?? (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin")
    var firstFound: String?
    for dir in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
        guard fileExists(candidate), !isDirectory(candidate) else { continue }
        if access(candidate, X_OK) == 0 { return (candidate, true) }
        if firstFound == nil { firstFound = candidate }
    }
    return firstFound.map { ($0, false) }
}

/// Converts a wait status into a shell-style exit status (128+signal when killed).
func shellStatus(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    if signal == 0 { return (status >> 8) & 0xff }
    return 128 + signal
}

final class ByteSink: @unchecked Sendable { var bytes: [UInt8] = [] }

/// Reads a file descriptor to its end.
func drain(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { buf in retryingEINTR { read(fd, buf.baseAddress, buf.count) } }
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Runs `argv[0]` (an absolute path) with `input` on stdin, collecting stdout and stderr.
public func runSubprocess(_ argv: [String], input: [UInt8] = []) throws(MemdirError) -> SubprocessResult {
    var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
    guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
        throw .system(call: "pipe", path: argv[0], reason: errnoText(errno))
    }
    // Close-on-exec everywhere: the child gets only the dup2'ed copies.
    for fd in inPipe + outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
    close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
    guard rc == 0 else {
        close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
        throw .system(call: "posix_spawn", path: argv[0], reason: errnoText(rc))
    }
    // SIGPIPE if the tool exits before reading everything: ignore it, the write just fails.
    signal(SIGPIPE, SIG_IGN)
    let group = DispatchGroup()
    let errSink = ByteSink()
    let writeFD = inPipe[1], errFD = errPipe[0]
    DispatchQueue.global().async(group: group) {
        _ = input.withUnsafeBytes { writeFully(writeFD, $0) }   // a tool that stops reading ends it
        close(writeFD)
    }
    DispatchQueue.global().async(group: group) { errSink.bytes = drain(errFD) }
    let out = drain(outPipe[0])
    group.wait()
    close(outPipe[0]); close(errPipe[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return SubprocessResult(status: shellStatus(status), stdout: out, stderr: errSink.bytes)
}

/// posix_spawn with an argv array; memdir ignores SIGINT/SIGQUIT while waiting (as shells
/// do), the child gets them back at their defaults.
func runProgram(path: String, argv: [String], environment: [String: String]) throws(MemdirError) -> Int32 {
    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    var cEnv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for p in cArgs + cEnv { free(p) } }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT); sigaddset(&defaults, SIGQUIT); sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attr, &defaults)
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let oldInt = signal(SIGINT, SIG_IGN), oldQuit = signal(SIGQUIT, SIG_IGN)
    defer { signal(SIGINT, oldInt); signal(SIGQUIT, oldQuit) }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, nil, &attr, &cArgs, &cEnv)
    switch rc {
    case 0: break
    case ENOENT: throw .programNotFound(path)
    case EACCES, ENOEXEC, EPERM, EISDIR: throw .programNotExecutable(path: path, reason: errnoText(rc))
    default: throw .system(call: "posix_spawn", path: path, reason: errnoText(rc))
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw .system(call: "waitpid", path: path, reason: errnoText(errno)) }
    }
    return shellStatus(status)
}
