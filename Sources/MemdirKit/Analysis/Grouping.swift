// Grouping.swift: the module map (address -> module, offset) and the group stage: which key a
// block is counted under for `--by caller|frame|stack`.

/// How leaked blocks are grouped.
public enum GroupingMode: String, CaseIterable, Sendable {
    /// The first stack frame: the direct caller of malloc.
    case caller
    /// The first frame outside allocation wrappers (the default).
    case frame
    /// The whole stack.
    case stack
}

/// Where an address lies: which module line, and the offset addr2line takes.
public struct ModuleLocation: Equatable, Sendable {
    public var moduleIndex: Int
    public var path: String
    public var offset: UInt64
}

/// The `modules` file as a lookup table.
public struct ModuleMap: Sendable {
    /// Sorted by `start`.
    public let lines: [ModuleLine]
    /// prefixMaxEnd[i] = max(end of lines[0...i]): lets the lookup stop early with overlaps.
    private let prefixMaxEnd: [UInt64]
    /// Whether lines[i]'s module is a wrapper module.
    public let isWrapper: [Bool]

    public init(_ lines: [ModuleLine], rules: WrapperRules = WrapperRules()) {
        self.lines = lines.sorted { ($0.start, $0.seq) < ($1.start, $1.seq) }
        var maxEnd: UInt64 = 0
        prefixMaxEnd = self.lines.map { maxEnd = max(maxEnd, $0.end); return maxEnd }
        isWrapper = self.lines.map { rules.isWrapperModule(path: $0.path) }
    }

    /// The line covering `address` (start <= A < end) with the largest seq not above `seq`;
    /// when every covering line is newer than the block (a block allocated by a library
    /// constructor before the first module snapshot), the oldest covering line.
    public func lineIndex(of address: UInt64, seq: UInt64) -> Int? {
        var lo = 0, hi = lines.count  // first index with start > address
        while lo < hi {
            let mid = (lo + hi) / 2
            if lines[mid].start <= address { lo = mid + 1 } else { hi = mid }
        }
        var best: Int?
        var oldest: Int?
        var i = lo - 1
        while i >= 0 && prefixMaxEnd[i] > address {
            let line = lines[i]
            if address < line.end {
                if line.seq <= seq && (best == nil || line.seq > lines[best!].seq) { best = i }
                if oldest == nil || line.seq < lines[oldest!].seq { oldest = i }
            }
            i -= 1
        }
        return best ?? oldest
    }

    public func locate(_ address: UInt64, seq: UInt64) -> ModuleLocation? {
        guard let i = lineIndex(of: address, seq: seq) else { return nil }
        return ModuleLocation(moduleIndex: i, path: lines[i].path, offset: address &- lines[i].base)
    }

    /// `module+0xOFFSET` with the module's basename, or the plain hex address.
    public func describe(_ address: UInt64, seq: UInt64) -> String {
        guard let loc = locate(address, seq: seq) else { return hex(address) }
        return "\(baseName(loc.path))+\(hex(loc.offset))"
    }
}

/// Picks the group key of a block from its stack, without symbol names (module rules only).
public struct Grouper: Sendable {
    public var mode: GroupingMode
    public var modules: ModuleMap
    /// `list --older-than`: blocks with a larger `ms` (younger) are left out.
    public var maxBlockMs: Int64?

    public init(mode: GroupingMode, modules: ModuleMap) {
        self.mode = mode
        self.modules = modules
    }

    /// Index of the attributed frame: first frame outside wrapper modules, else the last frame.
    public func attributedFrame(_ stack: UnsafeBufferPointer<UInt64>, seq: UInt64) -> Int {
        if stack.isEmpty { return 0 }
        for (i, address) in stack.enumerated() {
            guard let line = modules.lineIndex(of: address, seq: seq) else { return i }
            if !modules.isWrapper[line] { return i }
        }
        return stack.count - 1
    }

    public func key(_ stack: UnsafeBufferPointer<UInt64>, seq: UInt64) -> [UInt64] {
        if stack.isEmpty { return [] }
        switch mode {
        case .caller: return [stack[0]]
        case .frame: return [stack[attributedFrame(stack, seq: seq)]]
        case .stack: return Array(stack)
        }
    }

    public func key(_ stack: [UInt64], seq: UInt64) -> [UInt64] {
        stack.withUnsafeBufferPointer { key($0, seq: seq) }
    }
}
