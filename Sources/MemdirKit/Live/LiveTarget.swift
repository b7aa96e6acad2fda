// LiveTarget.swift: what `watch` and `check` look at: a directory (a MEM_DIR or one run
// directory), or a PID, which is found through MEM_DIR in /proc/PID/environ and the run
// directory whose `process` names that pid.

public enum LiveTarget {
    /// The run directories `argument` means: a PID's own, or those of a directory.
    public static func runDirectories(_ argument: String) throws(MemdirError) -> [String] {
        if !argument.isEmpty, argument.allSatisfy(\.isNumber), !fileExists(argument) {
            return [try runDirectory(ofPid: argument)]
        }
        return try Scanner.runDirectories(in: argument)
    }

    /// The run directory of a live traced process: its MEM_DIR (relative ones are relative to
    /// the process's working directory), then the newest run directory whose `process` has its pid.
    public static func runDirectory(ofPid pid: String) throws(MemdirError) -> String {
        guard case .success(let environ) = readTextFile("/proc/\(pid)/environ", limit: FileLimit.procFile) else {
            throw .processNotTraced(pid: pid, reason: fileExists("/proc/\(pid)") ? "its environment cannot be read (another user?)" : "no such process")
        }
        let variables = environ.split(separator: "\0", omittingEmptySubsequences: true)
        guard variables.contains(where: { $0.hasPrefix("LD_PRELOAD=") && $0.contains("libmemtrack") }) else {
            throw .processNotTraced(pid: pid, reason: "libmemtrack.so is not in its LD_PRELOAD")
        }
        var memDir = variables.first { $0.hasPrefix("MEM_DIR=") }.map { String($0.dropFirst("MEM_DIR=".count)) } ?? "mem"
        if memDir.isEmpty { memDir = "mem" }
        if !memDir.hasPrefix("/") {
            guard let cwd = symbolicLinkTarget("/proc/\(pid)/cwd") else {
                throw .processNotTraced(pid: pid, reason: "its working directory cannot be read")
            }
            memDir = Scanner.join(cwd, memDir)
        }
        let candidates = ((try? listDirectory(memDir)) ?? []).filter { $0.kind == .directory && ($0.name == pid || $0.name.hasPrefix(pid + ".")) }
            .map(\.name).sorted { Scanner.runOrder($0, $1) }
        for name in candidates.reversed() {
            let run = Scanner.join(memDir, name)
            if case .success(let text) = readTextFile(Scanner.join(run, "process"), limit: Scanner.RecordLimit.process),
               let record = try? RecordParser.parseProcess(text, path: run), String(record.pid) == pid {
                return run
            }
        }
        throw .processNotTraced(pid: pid, reason: "no run directory for it in \(memDir)")
    }
}
