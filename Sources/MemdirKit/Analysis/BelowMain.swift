// BelowMain.swift: stacks stop at `main`, as valgrind's default `--show-below-main=no`.
//
// Done once in the model, after resolution and before suppression, grouping and rendering, so
// every output (text, JSON, folded, generated suppressions, HTML) and every suppression sees the
// same stack: the one shown. A stack keeps its frames up to and including the one that holds
// `main`. A stack without `main` (a thread's, a block freed late by `exit`) keeps its frames up
// to and including the first of glibc's start-up functions ("below main" in valgrind's words),
// and is left whole when it has none. `--show-below-main=yes` skips all of it.
//
// Names come from the resolved symbols; a frame without symbols (`list`, snapshots, a module
// without debug information) is recognised as `main` by the executable's own symbol tables.

public enum BelowMain {
    /// glibc's start-up functions, valgrind's list (m_debuginfo's `get_fnname_kind`) with the
    /// names glibc's debug information gives them (`__libc_start_main_impl` is the DWARF name of
    /// `__libc_start_main@@GLIBC_2.34`), and `_start`, which a stack reaches without them only
    /// through the loader's start-up (constructors run before main).
    public static func isBelowMain(_ name: String) -> Bool {
        name == "__libc_start_main" || name == "__libc_start_call_main" || name == "__libc_start_main_impl"
            || name.hasPrefix("__libc_start_main.") || name == "generic_start_main" || name.hasPrefix("generic_start_main.")
            || name == "_start"
    }

    /// How many frames of `stack` are shown: through `main`, else through the first below-main
    /// frame, else all. `isMain` answers for frames without symbols.
    public static func shownCount(_ stack: [Frame], isMain: (Frame) -> Bool = { _ in false }) -> Int {
        if let i = stack.firstIndex(where: { f in f.symbols.isEmpty ? isMain(f) : f.symbols.contains { $0.function == "main" } }) {
            return i + 1
        }
        if let i = stack.firstIndex(where: { f in f.symbols.contains { s in s.function.map(isBelowMain) ?? false } }) {
            return i + 1
        }
        return stack.count
    }

    /// Cuts every stack of the report's processes (blocks, bad frees with their allocation and
    /// first-free stacks, shared memory). `executables`: the files whose `main` symbol marks an
    /// unresolved frame as `main` (each process's executable, or `--binary`).
    static func truncate(_ processes: inout [ProcessReport], executables: Set<String>) {
        var mainRanges: [String: [(start: UInt64, end: UInt64)]] = [:]
        func isMain(_ f: Frame) -> Bool {
            guard let module = f.module, let offset = f.offset, executables.contains(module) else { return false }
            if mainRanges[module] == nil { mainRanges[module] = SymbolTable.ranges(of: "main", path: module) }
            let address = ReportBuilder.adjusted(offset)
            return mainRanges[module]!.contains { $0.start <= address && address < $0.end }
        }
        func cut(_ stack: inout [Frame]) {
            let n = shownCount(stack, isMain: isMain)
            if n < stack.count { stack.removeLast(stack.count - n) }
        }
        for i in processes.indices {
            for g in processes[i].leaks.indices { cut(&processes[i].leaks[g].stack) }
            for b in processes[i].badFrees.indices {
                cut(&processes[i].badFrees[b].stack)
                if processes[i].badFrees[b].allocStack != nil { cut(&processes[i].badFrees[b].allocStack!) }
                if processes[i].badFrees[b].freeStack != nil { cut(&processes[i].badFrees[b].freeStack!) }
            }
            for m in processes[i].mappings.indices { cut(&processes[i].mappings[m].stack) }
            for s in processes[i].segments.indices { cut(&processes[i].segments[s].stack) }
        }
    }
}
