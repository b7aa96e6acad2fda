// Suppressions.swift: `--suppressions FILE` in both formats users already have, and
// `--gen-suppressions`. A file may mix them; each entry is recognised on its own:
// - LSan's `leak:PATTERN` lines: `*` wildcards, `^`/`$` anchors, otherwise a substring; matched
//   against the module path, the (demangled) function and the source file of every frame.
// - valgrind's `{ name / Memcheck:Leak / match-leak-kinds: ... / fun: obj: src: ... frames }`
//   entries: `*` and `?` wildcards, `...` for any number of frames, matched from the innermost
//   frame. valgrind's stacks start AT the allocation function (malloc, operator new) and ours at
//   its caller, so the block's stack is first given that frame (see `MatchFrame.stack`).
// - valgrind's `Memcheck:Free` entries match bad frees (double, invalid and mismatched frees:
//   valgrind's kind Free covers InvalidFree and MismatchedFree), against the free's stack with the
//   deallocation function in front; `Memcheck:SizeMismatch` (valgrind 3.22) matches a sized
//   delete given the wrong size. Every other kind (Addr4, Cond, Param...) is read and never
//   matches: memdir sees no reads or writes. LSan's files have no bad-free type.
// Two differences of naming are bridged (see `MatchFrame.names`): valgrind names a constructor
// or destructor by its complete-object symbol (C1, D1) where the debug info gives the base-object
// one (C2, D2) at the same address; and libstdc++'s operator new[] jumps into operator new
// without a frame of its own, so our stacks cannot tell `_Znam` from `_Znwm`.

/// One suppression, from a file.
public struct Suppression: Equatable, Sendable {
    public enum Pattern: Equatable, Sendable {
        case lsan(String)
        case valgrind([FramePattern])
    }

    public enum FramePattern: Equatable, Sendable {
        case function(String)
        case object(String)
        case source(String)
        case anyFrames
    }

    /// valgrind's entry name, or the LSan line as written.
    public var name: String
    public var file: String
    public var line: Int
    /// `match-leak-kinds:`; nil matches every kind.
    public var kinds: Set<LeakKind>?
    public var pattern: Pattern
    /// What the entry suppresses: leaked blocks (`Memcheck:Leak`, `leak:`) or bad frees.
    public var target: Target = .leak
    /// One of memdir's default suppressions (DefaultSuppressions.swift), not a user's file.
    public var builtIn = false

    public enum Target: Equatable, Sendable {
        case leak
        /// Bad frees of these kinds (`double-free`, `invalid-free`, ...); nil: every kind.
        case badFree(Set<String>?)
    }

    public init(name: String, file: String, line: Int, kinds: Set<LeakKind>? = nil, pattern: Pattern,
                target: Target = .leak, builtIn: Bool = false) {
        self.name = name
        self.file = file
        self.line = line
        self.kinds = kinds
        self.pattern = pattern
        self.target = target
        self.builtIn = builtIn
    }

    /// Whether the pattern needs function names or source files (which `list` does not resolve).
    public var needsSymbols: Bool {
        switch pattern {
        case .lsan: true
        case .valgrind(let frames): frames.contains {
            switch $0 {
            case .function(let p): p.contains { $0 != "*" }
            case .source: true
            case .object, .anyFrames: false
            }
        }
        }
    }
}

/// A frame as suppressions see it: inlined functions are frames of their own, as in valgrind.
public struct MatchFrame: Equatable, Sendable {
    /// The linkage (mangled) name, as valgrind's `fun:` wants it; nil when unknown.
    public var mangled: String?
    /// The demangled name, as LSan's patterns want it.
    public var function: String?
    public var object: String?
    public var file: String?
    public var line: Int?
    /// The first frame: the allocation function valgrind would show.
    public var isEntry = false

    /// The mangled names `fun:` patterns are tried against: the name, its C1/D1 spelling, and
    /// for the entry frame the other operator of the new / new[] pair.
    public var names: [String] {
        guard let mangled else { return ["???"] }
        var result = [mangled]
        let complete = MatchFrame.completeObjectName(mangled)
        if complete != mangled { result.append(complete) }
        if isEntry, let pair = MatchFrame.operatorPairs[mangled] { result.append(pair) }
        if isEntry, let forms = MatchFrame.deleteForms[mangled] { result += forms }
        // valgrind names glibc's start-up functions "(below main)" in its stacks and entries.
        if BelowMain.isBelowMain(mangled) || function.map(BelowMain.isBelowMain) == true { result.append("(below main)") }
        return result
    }

    /// `_ZN3FooC2Ev` -> `_ZN3FooC1Ev`: the complete-object constructor or destructor, the symbol
    /// valgrind shows for the address both share.
    public static func completeObjectName(_ mangled: String) -> String {
        guard mangled.hasPrefix("_Z") else { return mangled }
        var bytes = Array(mangled.utf8)
        var i = 0
        while i + 2 < bytes.count {
            if (bytes[i] == UInt8(ascii: "C") || bytes[i] == UInt8(ascii: "D")) && bytes[i + 1] == UInt8(ascii: "2")
                && (bytes[i + 2] == UInt8(ascii: "E") || bytes[i + 2] == UInt8(ascii: "I")) {
                bytes[i + 1] = UInt8(ascii: "1")
            }
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let operatorPairs: [String: String] = {
        var pairs: [String: String] = [:]
        for suffix in ["m", "mRKSt9nothrow_t", "mSt11align_val_t", "mSt11align_val_tRKSt9nothrow_t"] {
            pairs["_Znw" + suffix] = "_Zna" + suffix
            pairs["_Zna" + suffix] = "_Znw" + suffix
        }
        return pairs
    }()

    /// Every form of operator delete and delete[] (sized, aligned, nothrow): the tracker's `via`
    /// says only `delete` or `delete[]`.
    static let deleteForms: [String: [String]] = {
        let suffixes = ["", "m", "RKSt9nothrow_t", "St11align_val_t", "St11align_val_tRKSt9nothrow_t", "mSt11align_val_t"]
        return ["_ZdlPv": suffixes.map { "_ZdlPv" + $0 }, "_ZdaPv": suffixes.map { "_ZdaPv" + $0 }]
    }()

    /// valgrind's allocation-function frame of a block allocated through `via`, sitting in
    /// valgrind's preload library.
    static func entry(_ name: String, demangled: String?) -> MatchFrame {
        MatchFrame(mangled: name, function: demangled ?? name, object: "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
                   file: nil, line: nil, isEntry: true)
    }

    /// C++ allocation operators (libstdc++'s, called by the program, calling malloc): valgrind
    /// replaces them, so they are its stack's first frame.
    static let operatorNames: Set<String> = Set([
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    ] + deleteForms.values.joined())

    /// The tracker's `via` for blocks from C++'s operators (their stacks start at the operator's
    /// caller), as valgrind names the operator.
    static let viaOperatorNames = ["new": "_Znwm", "new[]": "_Znam", "new-aligned": "_ZnwmSt11align_val_t",
                                   "new[]-aligned": "_ZnamSt11align_val_t", "delete": "_ZdlPv", "delete[]": "_ZdaPv"]

    /// A block's (or a bad free's) stack the way valgrind shows it: the allocation (or
    /// deallocation) function first (`via`, or the C++ operator new or delete that called it),
    /// then the frames from the first one outside it. The tracker's own frames (a block the
    /// loader allocated is recorded from inside libmemtrack.so) are not in valgrind's stacks.
    public static func stack(_ frames: [Frame], via: String) -> [MatchFrame] {
        var expanded: [MatchFrame] = []
        for frame in frames where !(frame.module.map { baseName($0) == "libmemtrack.so" } ?? false) {
            if frame.symbols.isEmpty {
                expanded.append(MatchFrame(mangled: nil, function: nil, object: frame.module, file: nil, line: nil))
            }
            for s in frame.symbols {
                expanded.append(MatchFrame(mangled: s.mangled ?? s.function, function: s.function, object: frame.module,
                                           file: s.file, line: s.line))
            }
        }
        var entry = MatchFrame.entry(viaOperatorNames[via] ?? via, demangled: nil)
        while let first = expanded.first, let name = first.mangled, operatorNames.contains(name) {
            entry = .entry(name, demangled: first.function)
            expanded.removeFirst()
        }
        return [entry] + expanded
    }
}

public enum SuppressionParser {
    /// Parses one file's text. Throws `.malformedSuppressions` with the line number.
    public static func parse(_ text: String, file: String) throws(MemdirError) -> [Suppression] {
        var result: [Suppression] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingWhitespace
        }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            let number = i + 1
            i += 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line == "{" {
                // valgrind entry: name, tool:kind, [extra line for Param], [match-leak-kinds], frames, }
                var body: [(Int, Substring)] = []
                var closed = false
                while i < lines.count {
                    let l = lines[i]
                    i += 1
                    if l.isEmpty || l.hasPrefix("#") { continue }
                    if l == "}" { closed = true; break }
                    body.append((i, l))
                }
                guard closed else { throw .malformedSuppressions(path: file, line: number, reason: "entry not closed with '}'") }
                if let s = try valgrindEntry(body, file: file, line: number) { result.append(s) }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformedSuppressions(path: file, line: number, reason: "expected 'leak:PATTERN' or a '{' entry")
            }
            let type = line[..<colon], pattern = line[line.index(after: colon)...].trimmingWhitespace
            guard type.allSatisfy({ $0.isLetter || $0 == "_" }), !type.isEmpty else {
                throw .malformedSuppressions(path: file, line: number, reason: "expected 'leak:PATTERN' or a '{' entry")
            }
            // Other sanitizers' types (race:, interceptor_via_fun: ...) share these files.
            guard type == "leak" else { continue }
            guard !pattern.isEmpty else { throw .malformedSuppressions(path: file, line: number, reason: "empty pattern") }
            result.append(Suppression(name: String(line), file: file, line: number, kinds: nil, pattern: .lsan(String(pattern))))
        }
        return result
    }

    /// One `{ ... }` entry; nil when it is for another tool or error kind.
    static func valgrindEntry(_ body: [(Int, Substring)], file: String, line: Int) throws(MemdirError) -> Suppression? {
        guard body.count >= 2 else { throw .malformedSuppressions(path: file, line: line, reason: "entry needs a name and a Tool:Kind line") }
        let name = String(body[0].1)
        let toolLine = body[1].1
        guard let colon = toolLine.lastIndex(of: ":") else {
            throw .malformedSuppressions(path: file, line: body[1].0, reason: "expected Tool:Kind, found '\(toolLine)'")
        }
        let tools = toolLine[..<colon].split(separator: ",")
        guard tools.contains("Memcheck") else { return nil }
        let target: Suppression.Target
        switch toolLine[toolLine.index(after: colon)...] {
        case "Leak": target = .leak
        case "Free": target = .badFree(nil)
        case "SizeMismatch": target = .badFree(["mismatched-size"])
        default: return nil   // reads and writes (Addr4, Cond, Param...), or a kind of a later valgrind
        }
        var kinds: Set<LeakKind>?
        var frames: [Suppression.FramePattern] = []
        for (number, l) in body.dropFirst(2) {
            if l.hasPrefix("match-leak-kinds:") {
                let value = l.dropFirst("match-leak-kinds:".count).trimmingWhitespace
                guard let set = LeakKind.parseSet(String(value)) else {
                    throw .malformedSuppressions(path: file, line: number, reason: "bad match-leak-kinds '\(value)'")
                }
                kinds = set
            } else if l == "..." {
                frames.append(.anyFrames)
            } else if l.hasPrefix("fun:") {
                frames.append(.function(String(l.dropFirst(4))))
            } else if l.hasPrefix("obj:") {
                frames.append(.object(String(l.dropFirst(4))))
            } else if l.hasPrefix("src:") {
                frames.append(.source(String(l.dropFirst(4))))
            } else {
                throw .malformedSuppressions(path: file, line: number, reason: "expected fun:, obj:, src: or ..., found '\(l)'")
            }
        }
        return Suppression(name: name, file: file, line: line, kinds: target == .leak ? kinds : nil,
                           pattern: .valgrind(frames), target: target)
    }

    /// Reads and parses every file, in order (status 9 unreadable, 10 malformed).
    public static func load(_ paths: [String]) throws(MemdirError) -> [Suppression] {
        var all: [Suppression] = []
        for path in paths {
            switch readTextFile(path, limit: FileLimit.userFile, followLinks: true) {
            case .failure(let code): throw .suppressionsUnreadable(path: path, reason: errnoText(code))
            case .rejected(let why): throw .suppressionsUnreadable(path: path, reason: why)
            case .success(let text): all += try parse(text, file: path)
            }
        }
        return all
    }
}

public enum SuppressionMatcher {
    /// The first suppression that matches a block of `kind` with this stack.
    public static func match(_ suppressions: [Suppression], stack: [MatchFrame], kind: LeakKind) -> Int? {
        suppressions.firstIndex { s in
            guard s.target == .leak else { return false }
            if let kinds = s.kinds, !kinds.contains(kind) { return false }
            switch s.pattern {
            case .lsan(let p): return stack.dropFirst().contains { lsanFrame(p, $0) }
            case .valgrind(let frames): return valgrindMatch(frames[...], stack[...])
            }
        }
    }

    /// The first `Memcheck:Free` (or `SizeMismatch`) entry that matches a bad free of `kind`
    /// (`double-free`, `invalid-free`, `mismatched-free`, `mismatched-size`) with this stack.
    public static func matchBadFree(_ suppressions: [Suppression], stack: [MatchFrame], kind: String) -> Int? {
        suppressions.firstIndex { s in
            guard case .badFree(let kinds) = s.target, kinds?.contains(kind) ?? true,
                  case .valgrind(let frames) = s.pattern else { return false }
            return valgrindMatch(frames[...], stack[...])
        }
    }

    /// The module is tried as a path and as a file name, so `^libfoo.so$` works as well as `libfoo`.
    static func lsanFrame(_ pattern: String, _ f: MatchFrame) -> Bool {
        [f.object, f.object.map(baseName), f.function, f.file].contains { $0.map { lsanMatch(pattern, $0) } ?? false }
    }

    /// LSan's TemplateMatch: `*` any run, `^` anchors the start, `$` the end; otherwise the
    /// pattern may match anywhere in the text.
    public static func lsanMatch(_ pattern: String, _ text: String) -> Bool {
        var p = Substring(pattern)
        let anchoredStart = p.hasPrefix("^")
        if anchoredStart { p = p.dropFirst() }
        let anchoredEnd = p.hasSuffix("$")
        if anchoredEnd { p = p.dropLast() }
        let glob = (anchoredStart ? "" : "*") + p + (anchoredEnd ? "" : "*")
        return wildcardMatch(glob, text)
    }

    /// valgrind's frame list against the stack: all pattern frames must be used; the stack may
    /// go on (a suppression names the innermost frames).
    static func valgrindMatch(_ patterns: ArraySlice<Suppression.FramePattern>, _ stack: ArraySlice<MatchFrame>) -> Bool {
        guard let first = patterns.first else { return true }
        if case .anyFrames = first {
            let rest = patterns.dropFirst()
            for skip in 0...stack.count where valgrindMatch(rest, stack.dropFirst(skip)) { return true }
            return false
        }
        guard let frame = stack.first, frameMatches(first, frame) else { return false }
        return valgrindMatch(patterns.dropFirst(), stack.dropFirst())
    }

    static func frameMatches(_ p: Suppression.FramePattern, _ f: MatchFrame) -> Bool {
        switch p {
        case .function(let g):
            // valgrind names an unknown function "???"; a demangled name is accepted too.
            return f.names.contains { wildcardMatch(g, $0) } || (f.function.map { wildcardMatch(g, $0) } ?? false)
        case .object(let g): return wildcardMatch(g, f.object ?? "???")
        case .source(let g):
            guard let file = f.file else { return wildcardMatch(g, "???") }
            return wildcardMatch(g, baseName(file)) || wildcardMatch(g, file)
                || f.line.map { wildcardMatch(g, "\(baseName(file)):\($0)") || wildcardMatch(g, "\(file):\($0)") } ?? false
        case .anyFrames: return true
        }
    }

    /// `*` any run (also empty), `?` any one character, everything else literal.
    public static func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
        globMatch(pattern, text, questionMarkMatchesAny: true)
    }
}

/// `--gen-suppressions`: the entry valgrind's `--gen-suppressions=all` prints for a loss record.
public enum SuppressionWriter {
    /// The stack is the one shown: the model has already cut it at `main` (BelowMain.swift)
    /// unless `--show-below-main=yes`.
    public static func entry(for group: LeakGroup) -> String {
        var out = "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n"
        if let kind = group.kind.valgrindName { out += "   match-leak-kinds: \(kind)\n" }
        return out + frames(MatchFrame.stack(group.stack, via: group.sample.via)) + "}\n"
    }

    /// valgrind's entry for a bad free: kind Free (its InvalidFree and MismatchedFree) and the
    /// free's stack from the deallocation function.
    public static func entry(for badFree: BadFree) -> String {
        "{\n   <insert_a_suppression_name_here>\n   Memcheck:Free\n"
            + frames(MatchFrame.stack(badFree.stack, via: badFree.record.via)) + "}\n"
    }

    static func frames(_ stack: [MatchFrame]) -> String {
        var out = ""
        for f in stack {
            if let name = f.mangled {
                let shown = f.names.contains("(below main)") ? "(below main)" : MatchFrame.completeObjectName(name)
                out += "   fun:\(shown)\n"
            } else if let o = f.object { out += "   obj:\(o)\n" } else { out += "   obj:*\n" }
        }
        return out
    }
}

extension Substring {
    var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
