// BlockRecordV2.swift: block records of format version 2. Each is a symlink named by the block's
// address whose target holds the fields (`2 s=40 q=17 t=4242 m=12 v=m k=3`); `k` names a stack
// in the run directory's `stacks` file (`memtrack/2 stacks`, then `ID 0xFRAME,...` lines). One
// readlinkat per record, no open/read/close. Optional fields: `f=n` / `f=a` (a block of new /
// new[]), `l=ID:LINE` (memtrack.h's location: `ID` names a line `ID FILE<tab>FUNCTION` of the
// `sources` file). Version 1 records (regular files) go through BlockParser.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `stacks` file of one run directory: stack id -> frames.
public struct StackTable: Sendable {
    var frames: [UInt64] = []
    /// Index by id: start in `frames` and count; count -1 for an id with no line.
    var spans: [(start: Int32, count: Int32)] = []
    /// The `sources` file: id -> (file, function), both escaped as in a record.
    var sources: [UInt64: (file: [UInt8], function: [UInt8])] = [:]

    public static let empty = StackTable()
    public var count: Int { spans.lazy.filter { $0.count >= 0 }.count }

    public func stack(_ id: UInt64) -> ArraySlice<UInt64>? {
        guard id < UInt64(spans.count) else { return nil }
        let span = spans[Int(id)]
        guard span.count >= 0 else { return nil }
        return frames[Int(span.start)..<Int(span.start + span.count)]
    }

    /// Parses the whole file. A last line without a newline was cut short by a crash: no record
    /// can refer to it (its id was only handed out after the write), so it is ignored.
    public static func parse(_ text: String, path: String) throws(MemdirError) -> StackTable {
        var table = StackTable()
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.first, text.contains("\n") else {
            throw .malformedRecord(path: path, reason: "missing memtrack header")
        }
        guard header.hasPrefix("memtrack/") else { throw .malformedRecord(path: path, reason: "missing memtrack header") }
        let words = header.split(separator: " ")
        let version = words[0].dropFirst("memtrack/".count)
        guard version == "2" else { throw .unsupportedVersion(path: path, version: String(version)) }
        guard words.count == 2, words[1] == "stacks" else {
            throw .malformedRecord(path: path, reason: "expected a stacks file, found '\(header)'")
        }
        lines.removeFirst()
        lines.removeLast()  // empty after the final newline, or a torn line
        for line in lines where !line.isEmpty {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard let id = UInt32(parts[0]), id > 0, id < 1 << 28 else {
                throw .malformedRecord(path: path, reason: "bad stack id '\(parts[0].prefix(40))'")
            }
            var frames: [UInt64] = []
            if parts.count > 1 && !parts[1].isEmpty {
                for item in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
                    guard item.hasPrefix("0x"), let value = UInt64(item.dropFirst(2), radix: 16) else {
                        throw .malformedRecord(path: path, reason: "bad frame '\(item.prefix(40))' in stack \(id)")
                    }
                    frames.append(value)
                }
            }
            if Int(id) >= table.spans.count {
                table.spans.append(contentsOf: repeatElement((start: 0, count: -1), count: Int(id) + 1 - table.spans.count))
            }
            table.spans[Int(id)] = (start: Int32(table.frames.count), count: Int32(frames.count))
            table.frames.append(contentsOf: frames)
        }
        return table
    }

    public func source(_ id: UInt64) -> (file: [UInt8], function: [UInt8])? { sources[id] }

    /// Parses a `sources` file into the table: `ID FILE<tab>FUNCTION` lines, no header. A last
    /// line without a newline (cut short by a crash) and lines that do not parse are skipped:
    /// a record naming them keeps its stack only.
    public mutating func parseSources(_ text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let id = UInt64(parts[0]) else { continue }
            let halves = parts[1].split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            guard halves.count == 2 else { continue }
            sources[id] = (Array(halves[0].utf8), Array(halves[1].utf8))
        }
    }

    /// Reads `runDirectory/stacks` and `runDirectory/sources`. A directory without them
    /// (version 1, or no memtrack.h location) gets empty tables.
    public static func read(runDirectory: String) throws(MemdirError) -> StackTable {
        let path = runDirectory.hasSuffix("/") ? runDirectory + "stacks" : runDirectory + "/stacks"
        var table: StackTable
        switch readTextFile(path, limit: Scanner.RecordLimit.stacks) {
        case .failure(let code) where code == ENOENT: table = .empty
        case .failure(let code): throw .malformedRecord(path: path, reason: errnoText(code).lowercasedFirst)
        case .rejected(let reason): throw .malformedRecord(path: path, reason: reason)
        case .success(let text): table = try parse(text, path: path)
        }
        let sourcesPath = runDirectory.hasSuffix("/") ? runDirectory + "sources" : runDirectory + "/sources"
        switch readTextFile(sourcesPath, limit: Scanner.RecordLimit.sources) {
        case .failure(let code) where code == ENOENT: break
        case .failure(let code): throw .malformedRecord(path: sourcesPath, reason: errnoText(code).lowercasedFirst)
        case .rejected(let reason): throw .malformedRecord(path: sourcesPath, reason: reason)
        case .success(let text): table.parseSources(text)
        }
        return table
    }
}

public enum BlockRecordV2 {
    /// The entry point each `v=` letter stands for (README, record format 2).
    public static let viaNames: [UInt8: String] = [
        UInt8(ascii: "m"): "malloc", UInt8(ascii: "c"): "calloc", UInt8(ascii: "r"): "realloc",
        UInt8(ascii: "a"): "reallocarray", UInt8(ascii: "p"): "posix_memalign", UInt8(ascii: "A"): "aligned_alloc",
        UInt8(ascii: "M"): "memalign", UInt8(ascii: "v"): "valloc", UInt8(ascii: "P"): "pvalloc",
        UInt8(ascii: "n"): "new", UInt8(ascii: "N"): "new[]", UInt8(ascii: "b"): "new-aligned",
        UInt8(ascii: "B"): "new[]-aligned",
    ]
    /// The family each `f=` letter stands for; absent means malloc's.
    public static let familyNames: [UInt8: String] = [UInt8(ascii: "n"): "new", UInt8(ascii: "a"): "new[]"]

    public enum LinkRead { case link(Int), notALink, missing, failed(Int32) }

    /// readlinkat into `buffer`; `.notALink` for a regular (version 1) file.
    public static func readLink(dirfd: Int32, name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) -> LinkRead {
        let n = readlinkat(dirfd, name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count - 32)
        if n >= 0 { return .link(n) }
        switch errno {
        case EINVAL: return .notALink
        case ENOENT: return .missing  // freed between readdir and now: not a leak
        case let code: return .failed(code)
        }
    }

    /// Parses the `length` target bytes at the start of `buffer`, the record named `name`
    /// (`0xADDRESS.mem`). The via name is copied after the target, and `fields.via` points at
    /// it, so the result reads like a version 1 parse of the same buffer. `stack` gets the frames.
    public static func parse(_ buffer: UnsafeMutableRawBufferPointer, length: Int, name: UnsafePointer<CChar>,
                             stacks: StackTable, stack: inout [UInt64], end: inout Int) -> BlockParseResult {
        stack.removeAll(keepingCapacity: true)
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        let space = UInt8(ascii: " ")
        var i = 0
        while i < length && bytes[i] != space { i += 1 }
        guard i > 0, BlockParser.number(bytes, 0, i) != nil else {
            return .malformed("symlink is not a memtrack record: '\(BlockParser.text(bytes, 0, length))'")
        }
        guard i == 1 && bytes[0] == UInt8(ascii: "2") else {
            return .unsupportedVersion(BlockParser.text(bytes, 0, i))
        }
        var fields = BlockFields()
        var seen: UInt8 = 0
        var viaLetter: UInt8 = 0
        var stackID: UInt64 = 0
        var sourceID: UInt64 = 0, sourceLine: UInt64 = 0, hasSource = false
        var family: String? = nil
        while i < length {
            while i < length && bytes[i] == space { i += 1 }
            if i >= length { break }
            let keyStart = i
            while i < length && bytes[i] != UInt8(ascii: "=") && bytes[i] != space { i += 1 }
            guard i < length && bytes[i] == UInt8(ascii: "="), i - keyStart == 1 else {
                return .malformed("bad field '\(BlockParser.text(bytes, keyStart, i))'")
            }
            let key = bytes[keyStart]
            i += 1
            let valueStart = i
            while i < length && bytes[i] != space { i += 1 }
            if key == UInt8(ascii: "f") {
                guard i - valueStart == 1, let name = familyNames[bytes[valueStart]] else {
                    return .malformed("bad value '\(BlockParser.text(bytes, valueStart, i))' for 'f'")
                }
                family = name
                continue
            }
            if key == UInt8(ascii: "l") {
                var colon = valueStart
                while colon < i && bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                guard colon < i, let id = BlockParser.number(bytes, valueStart, colon),
                      let line = BlockParser.number(bytes, colon + 1, i) else {
                    return .malformed("bad value '\(BlockParser.text(bytes, valueStart, i))' for 'l'")
                }
                sourceID = id
                sourceLine = line
                hasSource = true
                continue
            }
            if key == UInt8(ascii: "v") {
                guard i - valueStart == 1 else { return .malformed("bad value '\(BlockParser.text(bytes, valueStart, i))' for 'v'") }
                viaLetter = bytes[valueStart]
                seen |= 1 << 4
                continue
            }
            let bit: UInt8
            switch key {
            case UInt8(ascii: "s"): bit = 0
            case UInt8(ascii: "q"): bit = 1
            case UInt8(ascii: "t"): bit = 2
            case UInt8(ascii: "m"): bit = 3
            case UInt8(ascii: "k"): bit = 5
            default: continue  // unknown keys are ignored
            }
            guard let value = BlockParser.number(bytes, valueStart, i) else {
                return .malformed("bad value '\(BlockParser.text(bytes, valueStart, i))' for '\(Character(UnicodeScalar(key)))'")
            }
            seen |= 1 << bit
            switch bit {
            case 0: fields.size = value
            case 1: fields.seq = value
            case 2: fields.thread = value
            case 3: fields.ms = value
            default: stackID = value
            }
        }
        if seen != 0x3F {
            let names = ["s", "q", "t", "m", "v", "k"]
            let missing = names.indices.first { seen & (1 << $0) == 0 }!
            return .malformed("missing field '\(names[missing])'")
        }
        guard let via = viaNames[viaLetter] else {
            return .malformed("unknown entry point 'v=\(Character(UnicodeScalar(viaLetter)))'")
        }
        guard let frames = stacks.stack(stackID) else { return .malformed("unknown stack id \(stackID)") }
        stack.append(contentsOf: frames)
        // The address is the name: `0x...` before `.mem`.
        let nameLength = strlen(name)
        let address = UnsafeRawBufferPointer(start: name, count: nameLength)
        guard nameLength > 4, let value = BlockParser.number(address, 0, nameLength - 4) else {
            return .malformed("bad record name")
        }
        fields.address = value
        var out = length
        for byte in via.utf8 { buffer[out] = byte; out += 1 }
        fields.via = length..<out
        if let family, out + family.utf8.count <= buffer.count {
            let start = out
            for byte in family.utf8 { buffer[out] = byte; out += 1 }
            fields.family = start..<out
        }
        // The location as a version 1 `src=` value (escaped): FILE:LINE:FUNCTION, when it fits.
        if hasSource, let source = stacks.source(sourceID) {
            let line = Array(String(sourceLine).utf8)
            let text = source.file + [UInt8(ascii: ":")] + line + [UInt8(ascii: ":")] + source.function
            if out + text.count <= buffer.count {
                let start = out
                for byte in text { buffer[out] = byte; out += 1 }
                fields.source = start..<out
            }
        }
        end = out
        return .ok(fields)
    }

    /// Every block record of one run directory, both versions, by file name: for tools and
    /// tests that look at single records.
    public static func readAll(runDirectory: String) throws(MemdirError) -> [String: BlockSample] {
        let stacks = try StackTable.read(runDirectory: runDirectory)
        let fd = open(runDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let dir = fdopendir(fd) else {
            if fd >= 0 { close(fd) }
            throw .directoryUnreadable(path: runDirectory, reason: errnoText(errno))
        }
        defer { closedir(dir) }
        var result: [String: BlockSample] = [:]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        var stack: [UInt64] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            guard name.hasSuffix(".mem") else { continue }
            let path = runDirectory + "/" + name
            var end = 0
            let result1: BlockParseResult = name.withCString { cName in
                switch readLink(dirfd: fd, name: cName, into: buffer) {
                case .link(let n): return parse(buffer, length: n, name: cName, stacks: stacks, stack: &stack, end: &end)
                case .missing: return .malformed("missing file")
                case .failed(let code): return .malformed(errnoText(code).lowercasedFirst)
                case .notALink:
                    guard case .success(let text) = readTextFile(path, limit: Scanner.RecordLimit.block) else { return .malformed("unreadable") }
                    let bytes = Array(text.utf8)
                    end = bytes.count
                    buffer.copyBytes(from: bytes)
                    return BlockParser.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<end]), stack: &stack)
                }
            }
            switch result1 {
            case .ok(let fields):
                result[name] = Scanner.sample(fields, UnsafeRawBufferPointer(rebasing: buffer[0..<end]), stack)
            case .malformed(let reason): throw .malformedRecord(path: path, reason: reason)
            case .unsupportedVersion(let version): throw .unsupportedVersion(path: path, version: version)
            }
        }
        return result
    }
}
