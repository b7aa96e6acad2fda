// Resolver.swift: the resolve stage's symbolizer. One addr2line process per module file, all of
// that module's offsets sent at once on stdin (`addr2line -e PATH -f -i -a`); the echoed
// address (`-a`) starts each address's block, which separates inlined frames. Names come
// mangled (suppressions need them) and are demangled here: C++ by libstdc++'s __cxa_demangle,
// Swift (`$s...`) by the runtime's swift_demangle.

import Dispatch

/// One source-level frame. An address yields several when functions were inlined into it.
public struct Symbol: Equatable, Sendable {
    public var function: String?
    public var file: String?
    public var line: Int?
    /// The linkage name (`_Znwm`), which valgrind's `fun:` suppressions use; nil when unknown.
    public var mangled: String?

    public init(function: String?, file: String?, line: Int?, mangled: String? = nil) {
        self.function = function
        self.file = file
        self.line = line
        self.mangled = mangled
    }
}

public struct Addr2Line: Sendable {
    public var executable: String
    /// The addr2line `--addr2line` named, used for every machine's modules (nil: the choice of
    /// Addr2LineChoice, MEMDIR_ADDR2LINE first).
    public var chosen: String?

    /// The addr2line `--addr2line` names (`explicit`), else MEMDIR_ADDR2LINE's, else the one on
    /// PATH: status 18 when the first two name no executable, 7 when there is none on PATH.
    /// Modules of another machine get theirs in symbolize(modules:) (Addr2LineChoice.swift).
    public static func locate(explicit: String? = nil) throws(MemdirError) -> Addr2Line {
        if let explicit {
            let path = try Addr2LineChoice.usable(explicit, setting: "--addr2line")
            return Addr2Line(executable: path, chosen: path)
        }
        if let value = Addr2LineChoice.override {
            return Addr2Line(executable: try Addr2LineChoice.usable(value, setting: "MEMDIR_ADDR2LINE"))
        }
        guard let found = findExecutable("addr2line"), found.executable else { throw .addr2lineMissing }
        return Addr2Line(executable: found.path)
    }

    public init(executable: String, chosen: String? = nil) {
        self.executable = executable
        self.chosen = chosen
    }

    /// Symbolizes `offsets` (already adjusted; what addr2line takes) in the module file `path`.
    /// Offsets with no debug info map to an empty array or to symbols with nil fields.
    /// Returns nil plus addr2line's message when the tool failed for the whole file.
    public func symbolize(path: String, offsets: [UInt64]) -> (symbols: [UInt64: [Symbol]], failure: String?) {
        if offsets.isEmpty { return ([:], nil) }
        // The path comes from a record: addr2line would block forever opening a FIFO.
        guard isRegularFile(path) else { return ([:], "not a regular file") }
        let input = offsets.map { hex($0) }.joined(separator: "\n") + "\n"
        let result: SubprocessResult
        do {
            result = try runSubprocess([executable, "-e", path, "-f", "-i", "-a"], input: Array(input.utf8))
        } catch {
            return ([:], error.description)
        }
        let parsed = Self.parse(String(decoding: result.stdout, as: UTF8.self))
        if parsed.isEmpty && result.status != 0 {
            let message = String(decoding: result.stderr, as: UTF8.self).split(separator: "\n").first.map(String.init)
            return ([:], message ?? "addr2line exited with status \(result.status)")
        }
        return (Self.withoutNeighbourNames(parsed, path: path), nil)
    }

    /// A name that did not come from debug information (no file) came from the nearest symbol
    /// below the address; it is kept only if that symbol's size covers the address.
    static func withoutNeighbourNames(_ parsed: [UInt64: [Symbol]], path: String) -> [UInt64: [Symbol]] {
        let suspect = parsed.filter { $0.value.count == 1 && $0.value[0].function != nil && $0.value[0].file == nil }
        guard !suspect.isEmpty, let table = SymbolTable.read(path: path) else { return parsed }
        var result = parsed
        for (address, _) in suspect where !table.contains(address) {
            result[address] = [Symbol(function: nil, file: nil, line: nil)]
        }
        return result
    }

    /// Parses `-a -f -i` output: an address line, then (function, file:line) pairs.
    public static func parse(_ output: String) -> [UInt64: [Symbol]] {
        var result: [UInt64: [Symbol]] = [:]
        var current: UInt64?
        var pendingFunction: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if pendingFunction == nil, line.hasPrefix("0x"), let address = UInt64(line.dropFirst(2), radix: 16) {
                current = address
                result[address] = result[address] ?? []
                continue
            }
            guard let address = current else { continue }
            if let function = pendingFunction {
                let (file, number) = parseLocation(line)
                let name: String? = function == "??" ? nil : Demangler.demangle(function)
                result[address, default: []].append(Symbol(function: name, file: file, line: number,
                                                           mangled: function == "??" ? nil : function))
                pendingFunction = nil
            } else if !line.isEmpty {
                pendingFunction = String(line)
            }
        }
        return result
    }

    /// "file.c:12", "file.c:12 (discriminator 3)", "??:0", "??:?", "crtstuff.c:?" (no file).
    static func parseLocation(_ text: Substring) -> (String?, Int?) {
        var text = text
        if text.hasSuffix(")"), let paren = text.firstIndex(of: "("), paren > text.startIndex {
            text = text[..<text.index(before: paren)]  // " (discriminator N)"
        }
        guard let colon = text.lastIndex(of: ":") else { return (text == "??" ? nil : String(text), nil) }
        let file = text[..<colon], number = Int(text[text.index(after: colon)...])
        // A file without a line ("crtstuff.c:?") is one the debug information does not really
        // tie to the address: addr2line took it from an unrelated compile unit. Left out.
        if file == "??" || file.isEmpty || number == nil || number == 0 { return (nil, nil) }
        return (String(file), number)
    }

    /// Symbolizes several modules, one addr2line process each, spread over the cores.
    public func symbolize(modules: [String: Set<UInt64>]) -> (symbols: [String: [UInt64: [Symbol]]], failures: [String: String]) {
        // Each file is read by an addr2line for its machine (records of another machine).
        var tools: [ELFMachine: String?] = [:]
        let jobs = modules.map { entry -> (String, [UInt64], Addr2Line?, String?) in
            guard let machine = ELFMachine.of(path: entry.key), machine != ELFMachine.host else {
                return (entry.key, entry.value.sorted(), self, nil)
            }
            if tools[machine] == nil { tools[machine] = .some(Addr2LineChoice.tool(for: machine, host: executable, chosen: chosen)) }
            guard let tool = tools[machine] ?? nil else { return (entry.key, [], nil, Addr2LineChoice.missing(machine)) }
            return (entry.key, entry.value.sorted(), Addr2Line(executable: tool), nil)
        }
        let results = ResultSlots(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            if let tool = jobs[i].2 { results.set(i, tool.symbolize(path: jobs[i].0, offsets: jobs[i].1)) }
            else { results.set(i, ([:], jobs[i].3)) }
        }
        var symbols: [String: [UInt64: [Symbol]]] = [:], failures: [String: String] = [:]
        for (i, job) in jobs.enumerated() {
            let r = results.get(i)
            symbols[job.0] = r.symbols
            if let f = r.failure { failures[job.0] = f }
        }
        return (symbols, failures)
    }
}

final class ResultSlots: @unchecked Sendable {
    private var slots: [([UInt64: [Symbol]], String?)]
    private let lock = Lock()
    init(count: Int) { slots = Array(repeating: ([:], nil), count: count) }
    func set(_ i: Int, _ value: (symbols: [UInt64: [Symbol]], failure: String?)) {
        lock.withLock { slots[i] = (value.symbols, value.failure) }
    }
    func get(_ i: Int) -> (symbols: [UInt64: [Symbol]], failure: String?) {
        lock.withLock { (slots[i].0, slots[i].1) }
    }
}
