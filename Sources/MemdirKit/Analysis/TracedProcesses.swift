// TracedProcesses.swift: which records `memdir run` shows when children are not traced.
//
// A child forked by the program is traced until it execs; the program it then runs restarts
// without the tracker (children.c). What the child left is one record in state `exec` whose
// blocks were all replaced by the exec: nothing to report, only noise. The exec'd image of a
// traced process has a record of its own (PID.2, PID.3, ...), so a missing one means the
// image was not traced.

extension Report {
    /// Removes the records of forked children that ended in an exec of an untraced program and
    /// found nothing (no bad free, no shared memory, every record read and complete); returns
    /// how many it removed.
    public mutating func removeProcessesReplacedByUntracedExec() -> Int {
        let names = Set(processes.map(\.name))
        let before = processes.count
        processes.removeAll { p in
            p.process?.parent != nil && p.status?.state == "exec" && !names.contains(Self.nextImageName(p.name))
                && p.badFrees.isEmpty && p.mappings.isEmpty && p.segments.isEmpty && p.problemCount == 0
                && !p.recordIncomplete && p.leakedBlocks == 0
        }
        return before - processes.count
    }

    /// "4242" -> "4242.2", "4242.2" -> "4242.3": the run directory of the image an exec starts.
    static func nextImageName(_ name: String) -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 2, let n = Int(parts[1]) { return "\(parts[0]).\(n + 1)" }
        return name + ".2"
    }
}
