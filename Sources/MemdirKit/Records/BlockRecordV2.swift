// BlockRecordV2.swift: block records of format version 2. Each is a symlink named by the block's
// address whose target holds the fields (`2 s=40 q=17 t=4242 m=12 v=m k=3`); `k` names a stack
// in the run directory's `stacks` file (`memtrack/2 stacks`, then `ID 0xFRAME,...` lines). One
// readlinkat per record, no open/read/close. Optional fields: `f=n` / `f=a` (a block of new /
// new[]), `l=ID:LINE` (memtrack.h's location: `ID` names a line `ID FILE<tab>FUNCTION` of the
// `sources` file). Version 1 records (regular files) go through BlockParser.

/// The `stacks` file of one run directory: stack id -> frames.
public struct StackTable: Sendable {
    var frames: [UInt64] = []
    /// Index by id: start in `frames` and count; count -1 for an id with no line. Dense up to
    /// about the number of lines read; ids far beyond it go to `sparse`, so one hostile id
    /// (up to 2^28) cannot make the index allocate gigabytes.
    var spans: [(start: Int, count: Int)] = []
    var sparse: [UInt64: (start: Int, count: Int)] = [:]
    /// The `sources` file: id -> (file, function), both escaped as in a record.
    var sources: [UInt64: (file: [UInt8], function: [UInt8])] = [:]

    public static let empty = StackTable()
    public var count: Int { spans.lazy.filter { $0.count >= 0 }.count + sparse.count }

    /// The longest `stacks` line the tracker writes: an id and 32 frames of at most 19 bytes
    /// (stacks.c); longer lines are malformed.
    public static let maximumLine = 2048
    /// The longest `sources` line: an id, a file name and a function name (memtrack.h's
    /// `__FILE__` and `__func__`, each cut at 4 KiB by the tracker).
    public static let maximumSourceLine = 16 * 1024

    public func stack(_ id: UInt64) -> ArraySlice<UInt64>? {
        let span: (start: Int, count: Int)
        if id < UInt64(spans.count) { span = spans[Int(id)] } else if let s = sparse[id] { span = s } else { return nil }
        guard span.count >= 0 else { return nil }
        return frames[span.start..<(span.start + span.count)]
    }

    /// Parses the whole file. A last line without a newline was cut short by a crash: no record
    /// can refer to it (its id was only handed out after the write), so it is ignored.
    public static func parse(_ text: String, path: String) throws(MemdirError) -> StackTable {
        var builder = Builder(path: path)
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            var failure: MemdirError?
            bytes[start..<end].withUnsafeBytes { line in
                do throws(MemdirError) { try builder.line(line, terminated: end < bytes.count) } catch { failure = error }
            }
            if let failure { throw failure }
            start = end + 1
        }
        return try builder.finish()
    }

    /// The table, line by line (the file is streamed: memory is the frames, not the text).
    struct Builder {
        let path: String
        var table = StackTable()
        var lines = 0
        var headerSeen = false

        mutating func line(_ line: UnsafeRawBufferPointer, terminated: Bool) throws(MemdirError) {
            defer { lines += 1 }
            if lines == 0 {
                guard terminated else { throw .malformedRecord(path: path, reason: "missing memtrack header") }
                let header = String(decoding: line.prefix(64), as: UTF8.self)
                guard header.hasPrefix("memtrack/") else { throw .malformedRecord(path: path, reason: "missing memtrack header") }
                let words = header.split(separator: " ", omittingEmptySubsequences: false)
                let version = words[0].dropFirst("memtrack/".count)
                guard version == "2" else { throw .unsupportedVersion(path: path, version: String(version.prefix(40))) }
                guard words.count == 2, words[1] == "stacks", line.count < 64 else {
                    throw .malformedRecord(path: path, reason: "expected a stacks file, found '\(header.prefix(40))'")
                }
                headerSeen = true
                return
            }
            guard terminated else { return }   // empty after the final newline, or a torn line
            if line.isEmpty { return }
            guard line.count <= StackTable.maximumLine else {
                throw .malformedRecord(path: path, reason: "line \(lines + 1) longer than \(StackTable.maximumLine) bytes")
            }
            var i = 0
            while i < line.count && line[i] != UInt8(ascii: " ") { i += 1 }
            guard let id = BlockParser.number(line, 0, i), id > 0, id < 1 << 28, line[0] != UInt8(ascii: "0") else {
                throw .malformedRecord(path: path, reason: "bad stack id '\(BlockParser.text(line, 0, min(i, 40)))'")
            }
            let start = table.frames.count
            if i + 1 < line.count, let bad = StackParser.parse(line, i + 1, line.count, hexOnly: true, into: &table.frames) {
                throw .malformedRecord(path: path, reason: "bad frame '\(BlockParser.text(line, bad.lowerBound, min(bad.upperBound, bad.lowerBound + 40)))' in stack \(id)")
            }
            let span = (start: start, count: table.frames.count - start)
            // Ids are handed out from 1 in order: a dense index up to twice the lines read (and
            // 64 Ki more) holds every real file; anything beyond is kept aside.
            if id < UInt64(table.spans.count) {
                table.spans[Int(id)] = span
            } else if id <= UInt64(2 * lines + 65536) {
                table.spans.append(contentsOf: repeatElement((start: 0, count: -1), count: Int(id) + 1 - table.spans.count))
                table.spans[Int(id)] = span
            } else {
                table.sparse[id] = span
            }
        }

        func finish() throws(MemdirError) -> StackTable {
            guard headerSeen else { throw .malformedRecord(path: path, reason: "missing memtrack header") }
            return table
        }
    }

    public func source(_ id: UInt64) -> (file: [UInt8], function: [UInt8])? { sources[id] }

    /// Parses a `sources` file into the table: `ID FILE<tab>FUNCTION` lines, no header. A last
    /// line without a newline (cut short by a crash) and lines that do not parse are skipped:
    /// a record naming them keeps its stack only.
    public mutating func parseSources(_ text: String) {
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            bytes[start..<end].withUnsafeBytes { sourceLine($0, terminated: end < bytes.count) }
            start = end + 1
        }
    }

    mutating func sourceLine(_ line: UnsafeRawBufferPointer, terminated: Bool) {
        guard terminated, let space = line.firstIndex(of: UInt8(ascii: " ")), let id = BlockParser.number(line, 0, space),
              let tab = line[(space + 1)...].firstIndex(of: 9) else { return }
        sources[id] = (Array(line[(space + 1)..<tab]), Array(line[(tab + 1)...]))
    }

    /// Reads `runDirectory/stacks` and `runDirectory/sources`, streamed. A directory without them
    /// (version 1, or no memtrack.h location) gets empty tables.
    public static func read(runDirectory: String) throws(MemdirError) -> StackTable {
        let path = Scanner.join(runDirectory, "stacks")
        var builder = Builder(path: path)
        var table: StackTable
        switch try forEachLine(path, limit: Scanner.RecordLimit.stacks, maxLine: maximumLine,
                               { (line, terminated) throws(MemdirError) -> Bool in try builder.line(line, terminated: terminated); return true }) {
        case .failure(Errno.noEntry): table = .empty
        case .failure(let code): throw .malformedRecord(path: path, reason: errnoText(code).lowercasedFirst)
        case .rejected(let reason): throw .malformedRecord(path: path, reason: reason)
        case .done: table = try builder.finish()
        }
        let sourcesPath = Scanner.join(runDirectory, "sources")
        switch try forEachLine(sourcesPath, limit: Scanner.RecordLimit.sources, maxLine: maximumSourceLine,
                               { (line, terminated) throws(MemdirError) -> Bool in table.sourceLine(line, terminated: terminated); return true }) {
        case .failure(Errno.noEntry), .done: break
        case .failure(let code): throw .malformedRecord(path: sourcesPath, reason: errnoText(code).lowercasedFirst)
        case .rejected(let reason): throw .malformedRecord(path: sourcesPath, reason: reason)
        }
        return table
    }
}

public enum BlockRecordV2 {
    /// The entry point each `v=` letter stands for (the catalog's Record format, version 2).
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
        switch readLinkTarget(directory: dirfd, name: name, into: buffer, reserve: 32) {
        case .length(let n): return .link(n)
        case .notALink: return .notALink
        case .missing: return .missing  // freed between readdir and now: not a leak
        case .failed(let code): return .failed(code)
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
        let nameLength = cStringLength(name)
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
        let dir = try DirectoryReader(runDirectory)
        defer { withExtendedLifetime(dir) {} }   // its descriptor is used for every record
        let fd = dir.descriptor
        var result: [String: BlockSample] = [:]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        var stack: [UInt64] = []
        while let entry = dir.next() {
            let name = entry.name
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
