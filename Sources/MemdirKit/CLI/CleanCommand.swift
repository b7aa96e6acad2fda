// CleanCommand.swift: `memdir clean`: removes the records directories that `memdir run` made and
// kept, once nothing uses them. Never anything else: only directories named memdir-run-XXXXXX
// in the places run makes them, owned by this user, marked by run (or, made by an older
// memdir, holding nothing but tracker run directories), and whose memdir and traced processes
// have all ended.

public struct CleanCommand: Command {
    public static let name = "clean"
    public static let summary = "Remove the records directories memdir run kept, once their processes have ended."
    public static let usage = "memdir clean [--dry-run] [--older-than AGE] [DIR...]"
    public static let discussion = """
        Looks in $TMPDIR, /dev/shm and /tmp (or the DIRs given) for directories named memdir-run-XXXXXX that memdir run
        made. A directory is removed only when it is owned by you and neither its memdir nor any process it records is
        still running. Exit status 0, or 1 when a directory could not be removed.
        """
    public static let options = [
        OptionSpec("--dry-run", help: "Print what would be removed, remove nothing."),
        OptionSpec("--older-than", value: "AGE", help: "Only directories last changed at least AGE ago (e.g. 1h, 2d is 48h)."),
    ]

    public var places: [String]
    public var dryRun: Bool
    public var olderThanMs: Double?

    public init(_ a: ParsedArguments) throws(MemdirError) {
        dryRun = a.flag("--dry-run")
        olderThanMs = try a.value("--older-than").map { (t: String) throws(MemdirError) in try BlockAge.option(t, name: "--older-than") }
        places = a.positionals
    }

    public func run(_ console: Console) throws(MemdirError) -> Int32 {
        var roots = places
        if roots.isEmpty {
            roots = [RunCommand.temporaryRoot(), "/dev/shm", "/tmp"].uniqued.filter { isDirectory($0) }
        }
        var removed = 0, kept = 0, failed = 0
        for root in roots {
            guard isDirectory(root) else { throw .directoryUnreadable(path: root, reason: "not a directory") }
            let entries = (try? listDirectory(root)) ?? []
            for entry in entries.sorted(by: { $0.name < $1.name })
            where entry.kind == .directory && Self.isRunDirectoryName(entry.name) {
                let path = root.hasSuffix("/") ? root + entry.name : root + "/" + entry.name
                switch Self.verdict(path, olderThanMs: olderThanMs) {
                case .notOurs: continue
                case .inUse(let why):
                    kept += 1
                    console.err("memdir: keeping \(path.printable): \(why)\n")
                case .removable:
                    if dryRun {
                        console.out("would remove \(path.printable)\n")
                        removed += 1
                    } else if let error = removeTree(path) {
                        failed += 1
                        console.error("cannot remove \(path.printable): \(error)")
                    } else {
                        console.out("removed \(path.printable)\n")
                        removed += 1
                    }
                }
            }
        }
        console.out("\(dryRun ? "would remove" : "removed") \(countText(removed)) records director\(removed == 1 ? "y" : "ies")"
            + (kept > 0 ? ", kept \(countText(kept)) in use" : "") + "\n")
        return failed > 0 ? 1 : 0
    }

    enum Verdict: Equatable { case notOurs, inUse(String), removable }

    /// memdir-run- and six characters of mkdtemp's alphabet.
    static func isRunDirectoryName(_ name: String) -> Bool {
        guard name.hasPrefix(RunCommand.directoryPrefix) else { return false }
        let suffix = name.dropFirst(RunCommand.directoryPrefix.count)
        return suffix.count == 6 && suffix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    static func verdict(_ path: String, olderThanMs: Double?) -> Verdict {
        guard let st = PathStatus(linkAt: path), st.isDirectory, st.owner == currentUserID() else { return .notOurs }
        let entries = (try? listDirectory(path)) ?? []
        let marker = entries.first { $0.name == RunCommand.madeByMarker && $0.kind == .file }
        let runs = entries.filter { $0.name != RunCommand.madeByMarker }
        if marker == nil {
            // Made by a memdir older than the marker: every entry must be a tracker run directory.
            guard !runs.isEmpty, runs.allSatisfy({ $0.kind == .directory && isTrackerRun(path + "/" + $0.name) }) else { return .notOurs }
        }
        if let marker, let text = readSmallText(path + "/" + marker.name),
           let pid = Int32(text.split(separator: " ").last?.split(separator: "\n").first ?? ""), isAlive(pid) {
            return .inUse("memdir (pid \(pid)) is still running")
        }
        for run in runs where run.kind == .directory {
            if let status = ProcessStats.readStatus(path + "/" + run.name), status.state == "running",
               let pid = Int32(run.name.split(separator: ".").first ?? ""), isAlive(pid) {
                return .inUse("process \(pid) is still running")
            }
        }
        if let olderThanMs {
            let ageMs = (Double(unixTimeSeconds()) - Double(st.modifiedUnixSeconds)) * 1000
            if ageMs < olderThanMs { return .inUse("changed less than --older-than ago") }
        }
        return .removable
    }

    static func isTrackerRun(_ path: String) -> Bool {
        guard let text = readSmallText(path + "/process") else { return false }
        return text.hasPrefix("memtrack/")
    }

    static func isAlive(_ pid: Int32) -> Bool { pid > 0 && processIsAlive(pid) }

    /// A small regular file's text (the marker, a process record), never following a link nor
    /// blocking on a FIFO; nil when it is anything else.
    static func readSmallText(_ path: String) -> String? {
        if case .success(let text) = readTextFile(path, limit: 4096) { return text }
        return nil
    }
}
