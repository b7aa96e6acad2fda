// MemdirError.swift: every failure memdir reports, with the exit status each one means.
// Messages are short lowercase sentences; the case carries what the user needs to act
// (the path, the errno text, what did not parse).

/// An error that ends a memdir command. `exitStatus` is the documented process status.
public enum MemdirError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Unknown option, missing value, bad value. Status 2.
    case usage(String)
    /// The directory does not exist or cannot be read. Status 3.
    case directoryUnreadable(path: String, reason: String)
    /// The directory holds no tracker records at all. Status 4.
    case noRecords(path: String)
    /// A record file is malformed or truncated. Status 5.
    case malformedRecord(path: String, reason: String)
    /// A record header names a format version other than 1. Status 6.
    case unsupportedVersion(path: String, version: String)
    /// addr2line is not on PATH. Status 7.
    case addr2lineMissing
    /// `--addr2line` or MEMDIR_ADDR2LINE names no executable file. Status 18.
    case addr2lineUnusable(value: String, setting: String, reason: String)
    /// libmemtrack.so was not found (run). Status 8.
    case libraryNotFound(searched: [String])
    /// The program exists but cannot be executed. Status 126.
    case programNotExecutable(path: String, reason: String)
    /// The program was not found. Status 127.
    case programNotFound(String)
    /// A `--suppressions` file cannot be read. Status 9.
    case suppressionsUnreadable(path: String, reason: String)
    /// A `--suppressions` file has a line neither format accepts. Status 10.
    case malformedSuppressions(path: String, line: Int, reason: String)
    /// The `--json-file` cannot be written. Status 11.
    case outputUnwritable(path: String, reason: String)
    /// A system call failed in a way none of the above describes. Status 1.
    case system(call: String, path: String, reason: String)
    /// A run directory has no `counters` file (a tracker older than this memdir). Status 12.
    case noCounters(path: String)
    /// `watch`/`check PID`: no such process, or it does not run under the tracker. Status 13.
    case processNotTraced(pid: String, reason: String)
    /// `check`: the process is not running (its status says how it ended). Status 14.
    case processNotRunning(path: String, state: String)
    /// `check`: no answer within the timeout. Status 15.
    case checkTimedOut(path: String, seconds: Double)
    /// `--binary` names a file that does not exist or cannot be read. Status 16.
    case binaryUnreadable(path: String, reason: String)
    /// `--binary` is not the executable that ran (its build-id differs). Status 17.
    case binaryMismatch(path: String, recorded: String, found: String, executable: String)
    /// A file of another memdir format than the one wanted (a report given as a snapshot):
    /// what it is, what was wanted, and how to make one. Status 6, as another format version.
    case wrongFileKind(path: String, found: String, expected: String, hint: String)

    public var exitStatus: Int32 {
        switch self {
        case .usage: 2
        case .directoryUnreadable: 3
        case .noRecords: 4
        case .malformedRecord: 5
        case .unsupportedVersion: 6
        case .addr2lineMissing: 7
        case .addr2lineUnusable: 18
        case .libraryNotFound: 8
        case .suppressionsUnreadable: 9
        case .malformedSuppressions: 10
        case .outputUnwritable: 11
        case .programNotExecutable: 126
        case .programNotFound: 127
        case .system: 1
        case .noCounters: 12
        case .processNotTraced: 13
        case .processNotRunning: 14
        case .checkTimedOut: 15
        case .binaryUnreadable: 16
        case .binaryMismatch: 17
        case .wrongFileKind: 6
        }
    }

    public var description: String {
        switch self {
        case .usage(let text): text
        case .directoryUnreadable(let path, let reason): "cannot read directory \(path): \(reason.lowercasedFirst)"
        case .noRecords(let path): "no tracker records in \(path)"
        case .malformedRecord(let path, let reason): "malformed record \(path): \(reason)"
        case .unsupportedVersion(let path, let version):
            "record format version \(version) is not supported (expected memtrack/1) in \(path)"
        case .addr2lineMissing: "addr2line not found on PATH (install binutils)"
        case .addr2lineUnusable(let value, let setting, let reason): "\(setting) \(value): \(reason)"
        case .libraryNotFound(let searched):
            "libmemtrack.so not found (looked at \(searched.joined(separator: ", ")); set MEMDIR_LIBRARY"
        case .programNotExecutable(let path, let reason): "cannot execute \(path): \(reason.lowercasedFirst)"
        case .programNotFound(let name): "program not found: \(name)"
        case .suppressionsUnreadable(let path, let reason): "cannot read suppressions file \(path): \(reason.lowercasedFirst)"
        case .malformedSuppressions(let path, let line, let reason): "malformed suppressions file \(path):\(line): \(reason)"
        case .outputUnwritable(let path, let reason): "cannot write \(path): \(reason.lowercasedFirst)"
        case .system(let call, let path, let reason): "\(call) \(path): \(reason.lowercasedFirst)"
        case .noCounters(let path): "no counters file in \(path) (the run had MEM_COUNTERS=0, or was recorded by an older libmemtrack.so)"
        case .processNotTraced(let pid, let reason): "process \(pid) is not traced: \(reason)"
        case .processNotRunning(let path, let state): "the process of \(path) is not running (state \(state))"
        case .binaryUnreadable(let path, let reason): "cannot read --binary \(path): \(reason.lowercasedFirst)"
        case .binaryMismatch(let path, let recorded, let found, let executable):
            "--binary \(path) is not the program that ran: its build-id is \(found), \(executable) had \(recorded) "
                + "(rebuilt since? --ignore-build-id resolves in it anyway)"
        case .checkTimedOut(let path, let seconds): "no answer from the process of \(path) within \(seconds) s (is its writer thread running? MEM_SETTLE_MS=0 has none)"
        case .wrongFileKind(let path, let found, let expected, let hint): "\(path) is \(found), not \(expected); \(hint)"
        }
    }
}

extension String {
    /// "No such file" -> "no such file": errno texts inside our lowercase sentences.
    var lowercasedFirst: String {
        guard let first else { return self }
        return first.lowercased() + dropFirst()
    }
}
