// RunCommand.swift: `memdir run PROGRAM ARGS...`: runs a program under libmemtrack.so in a fresh
// records directory, then prints the resolved report. The program's stdin/stdout/stderr are
// inherited; the report goes to stderr (JSON to stdout with --json) so the program's stdout
// stays usable in pipelines. Exit status: the program's (128+signal when killed), or the gate's
// (23, or N from --error-exitcode; 0 turns it off) when there are lost blocks of the
// --errors-for-leak-kinds kinds, bad frees, or an incomplete record.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct RunCommand: Command {
    public static let name = "run"
    public static let summary = "Run a program under libmemtrack.so and print the resolved report."
    public static let usage = "memdir run [--dir DIR] [--error-exitcode N] [--errors-for-leak-kinds KINDS] [--json] [--json-file FILE] [--by caller|frame|stack] [--binary PATH] [--show-leak-kinds KINDS] [--suppressions FILE]... [--gen-suppressions] [--] PROGRAM [ARGS...]"
    public static let discussion = """
        The report goes to stderr (with --json, JSON to stdout). Records are kept in DIR (default: a new
        memdir-run-XXXXXX in $TMPDIR if set, else in /dev/shm, else in /tmp). libmemtrack.so is looked for beside the memdir executable;
        the MEMDIR_LIBRARY environment variable overrides that path. Exit status: 23 (or --error-exitcode N; 0 turns the
        gate off) when there are lost blocks of the --errors-for-leak-kinds kinds after suppressions, bad frees, or an
        incomplete record; otherwise the program's own.
        """
    public static let options = ReportFlags.options + LeakFlags.options + [
        OptionSpec("--dir", value: "DIR", help: "Write the records to DIR, which must be empty or not exist."),
        OptionSpec("--error-exitcode", value: "N", help: "Exit with N (default 23; 0: off) when lost blocks, bad frees or an incomplete record are found."),
        OptionSpec("--errors-for-leak-kinds", value: "KINDS", help: "The kinds that fail the run: definite,indirect,possible,reachable,all,none (default definite,indirect)."),
        OptionSpec("--binary", value: "PATH", help: "Resolve the main executable's frames in PATH."),
    ]
    public static let stopsAtFirstPositional = true

    /// LSan's exit status for leaks.
    public static let defaultErrorExitCode: Int32 = 23
    public static let defaultErrorKinds: Set<LeakKind> = [.definitelyLost, .indirectlyLost]

    public var flags: ReportFlags
    public var leakFlags: LeakFlags
    public var directory: String?
    /// 0: the gate is off.
    public var errorExitCode: Int32 = defaultErrorExitCode
    public var errorKinds: Set<LeakKind> = defaultErrorKinds
    public var binary: String?
    public var program: [String]

    public init(_ a: ParsedArguments) throws(MemdirError) {
        flags = try ReportFlags(a)
        leakFlags = try LeakFlags(a)
        errorKinds = try LeakFlags.kinds(a, "--errors-for-leak-kinds") ?? Self.defaultErrorKinds
        directory = a.value("--dir")
        binary = a.value("--binary")
        if let n = a.value("--error-exitcode") {
            guard let v = Int32(n), (0...255).contains(v) else {
                throw .usage("invalid value '\(n)' for '--error-exitcode' (expected 0 to 255)")
            }
            errorExitCode = v
        }
        guard !a.positionals.isEmpty else { throw .usage("missing PROGRAM to run") }
        program = a.positionals
    }

    /// MEMDIR_LIBRARY, else libmemtrack.so beside the real path of this executable.
    public static func findLibrary(environment: [String: String]) throws(MemdirError) -> String {
        if let override = environment["MEMDIR_LIBRARY"], !override.isEmpty {
            guard fileExists(override) else { throw .libraryNotFound(searched: [override]) }
            return absolute(override)
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath("/proc/self/exe", &buffer) != nil else {
            throw .libraryNotFound(searched: ["/proc/self/exe"])
        }
        let exe = string(fromNulTerminated: buffer)
        let candidate = String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/libmemtrack.so"
        guard fileExists(candidate) else { throw .libraryNotFound(searched: [candidate]) }
        return candidate
    }

    static func absolute(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        return realpath(path, &buffer) != nil ? string(fromNulTerminated: buffer) : path
    }

    /// Creates the records directory: DIR (empty or new), or a fresh one under the temp dir.
    static func makeDirectory(_ requested: String?) throws(MemdirError) -> String {
        if let dir = requested {
            if fileExists(dir) {
                guard isDirectory(dir) else { throw .usage("--dir \(dir) is not a directory") }
                guard try listDirectory(dir).isEmpty else { throw .usage("--dir \(dir) must be empty or not exist") }
            } else if mkdir(dir, 0o700) != 0 {
                throw .directoryUnreadable(path: dir, reason: errnoText(errno))
            }
            return absolute(dir)
        }
        let tmp = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            ?? (access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp")
        var template = Array((tmp + "/memdir-run-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else {
            throw .directoryUnreadable(path: tmp, reason: errnoText(errno))
        }
        return absolute(string(fromNulTerminated: template))
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        var environment = currentEnvironment()
        let library = try Self.findLibrary(environment: environment)
        // Bad suppressions or --json-file fail before the program runs.
        let leaks = try leakFlags.leakOptions()
        let jsonFile = try leakFlags.jsonFile.map { (path) throws(MemdirError) in try JSONFile(path) }
        guard let found = findExecutable(program[0], path: environment["PATH"]) else {
            throw .programNotFound(program[0])
        }
        guard found.executable else {
            throw .programNotExecutable(path: found.path, reason: errnoText(EACCES))
        }
        let dir = try Self.makeDirectory(directory)
        environment["MEM_DIR"] = dir
        environment["LD_PRELOAD"] = [library, environment["LD_PRELOAD"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")

        let status = try Self.spawnAndWait(path: found.path, argv: program, environment: environment)

        var resolve = true
        var addr2line: Addr2Line?
        do { addr2line = try Addr2Line.locate() } catch {
            console.warning("addr2line not found on PATH: locations are not resolved")
            resolve = false
        }
        let report = try ReportBuilder.build(
            directory: dir,
            options: ReportOptions(grouping: flags.grouping, rules: flags.rules, resolve: resolve, binary: binary,
                                   addr2line: addr2line, leaks: leaks))
        let emitted = emit(report, flags: flags, leakFlags: leakFlags, jsonFile: jsonFile,
                           to: flags.json ? console.out : console.err, console: console)
        console.err("memdir: records kept in \(dir.printable)\n")
        if emitted == MemdirError.outputUnwritable(path: "", reason: "").exitStatus { return emitted }  // --json-file failed
        return gate(report, programStatus: status, console: console)
    }

    /// The exit status: the gate's when it fails, else the program's. Says why, in one line each.
    func gate(_ report: Report, programStatus: Int32, console: Console) -> Int32 {
        guard errorExitCode != 0 else { return programStatus }
        let unclassified = report.totals[.notClassified]
        if unclassified.blocks > 0 {
            console.err("memdir: note: \(unclassified.blocks) block\(unclassified.blocks == 1 ? "" : "s") not classified "
                + "(\(report.processes.compactMap(\.unclassifiedReason).uniqued.joined(separator: "; ").printable)): not counted as lost\n")
        }
        guard report.gateFails(kinds: errorKinds) else { return programStatus }
        var why: [String] = []
        for kind in LeakKind.classified where errorKinds.contains(kind) && report.totals[kind].blocks > 0 {
            why.append("\(report.totals[kind].blocks) \(kind.words)")
        }
        if report.badFreeCount > 0 { why.append("\(report.badFreeCount) bad free\(report.badFreeCount == 1 ? "" : "s")") }
        if report.processes.contains(where: \.recordIncomplete) { why.append("record incomplete") }
        console.err("memdir: exit status \(errorExitCode): \(why.joined(separator: ", "))\n")
        return errorExitCode
    }

    /// posix_spawn with an argv array; memdir ignores SIGINT/SIGQUIT while waiting (as shells
    /// do), the child gets them back at their defaults.
    static func spawnAndWait(path: String, argv: [String], environment: [String: String]) throws(MemdirError) -> Int32 {
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
}
