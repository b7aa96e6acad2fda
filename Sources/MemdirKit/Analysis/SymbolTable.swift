// SymbolTable.swift: the address ranges of a module's function symbols, read from its ELF
// symbol tables (.symtab and .dynsym), to check a name that addr2line took from them.
//
// Without debug information addr2line names an address after the nearest symbol below it,
// however far away: inside stripped /usr/bin/ls every frame gets the name of the last exported
// function before it. A symbol names an address only if the address lies within the symbol's
// size (`nm --print-size`), which is how eu-addr2line decides; otherwise the frame is shown as
// `module+0xOFFSET`.

public struct SymbolTable: Sendable {
    /// Sorted by start; half-open [start, end) in the file's virtual addresses.
    var ranges: [(start: UInt64, end: UInt64)]

    /// Whether a function symbol covers `address` (a file virtual address: what addr2line takes).
    public func contains(_ address: UInt64) -> Bool {
        var low = 0, high = ranges.count
        while low < high {   // the first range starting above address
            let mid = (low + high) / 2
            if ranges[mid].start <= address { low = mid + 1 } else { high = mid }
        }
        // Symbols may nest or overlap (aliases, ifunc resolvers): look back over those that start
        // below the address until one covers it. Ranges are short, so this stays near.
        var i = low - 1
        var scanned = 0
        while i >= 0 && scanned < 64 {
            if address < ranges[i].end { return true }
            i -= 1
            scanned += 1
        }
        return false
    }

    /// Reads the function symbols of an ELF64 little-endian file; nil when it is not one.
    public static func read(path: String) -> SymbolTable? {
        var ranges: [(start: UInt64, end: UInt64)] = []
        guard forEachFunction(path: path, named: nil, { ranges.append(($0, $1)) }) else { return nil }
        ranges.sort { $0.start < $1.start }
        return SymbolTable(ranges: ranges)
    }

    /// The [start, end) ranges of the function symbols called `name` (e.g. `main`; several when
    /// both tables hold it); empty when there is none or the file is not ELF64.
    public static func ranges(of name: String, path: String) -> [(start: UInt64, end: UInt64)] {
        var ranges: [(start: UInt64, end: UInt64)] = []
        _ = forEachFunction(path: path, named: name) { ranges.append(($0, $1)) }
        return ranges
    }

    /// Calls `body(start, end)` for each sized function symbol (only those called `name` when
    /// given) of .symtab and .dynsym; false when the file is not an ELF64 little-endian file.
    static func forEachFunction(path: String, named name: String?, _ body: (UInt64, UInt64) -> Void) -> Bool {
        // A module path comes from a record: never block on a FIFO planted under its name, and
        // read only what lies inside the regular file.
        guard case .file(let file) = ReadOnlyFile.opening(path) else { return false }
        func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? { file.bytes(at: offset, count: count) }
        func integer(_ b: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for k in (0..<size).reversed() { value = value << 8 | UInt64(b[at + k]) }
            return value
        }
        guard let header = bytes(0, 64), header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46,
              header[4] == 2, header[5] == 1 else { return false }
        let sectionOffset = integer(header, 0x28, 8)
        let sectionSize = Int(integer(header, 0x3A, 2)), sectionCount = Int(integer(header, 0x3C, 2))
        guard sectionSize >= 64, sectionCount > 0, sectionCount < 65536,
              let sections = bytes(sectionOffset, sectionSize * sectionCount) else { return false }
        let wanted = name.map { Array($0.utf8) + [0] }
        for s in 0..<sectionCount {
            let base = s * sectionSize
            let type = integer(sections, base + 4, 4)
            guard type == 2 || type == 11 else { continue }   // SHT_SYMTAB, SHT_DYNSYM
            let offset = integer(sections, base + 0x18, 8), size = integer(sections, base + 0x20, 8)
            guard size > 0, size < 1 << 31, let table = bytes(offset, Int(size)) else { continue }
            // Names only when asked for: the string table is the section sh_link names.
            var strings: [UInt8] = []
            if wanted != nil {
                let link = Int(integer(sections, base + 0x28, 4))
                guard link < sectionCount else { continue }
                let strOffset = integer(sections, link * sectionSize + 0x18, 8), strSize = integer(sections, link * sectionSize + 0x20, 8)
                guard strSize > 0, strSize < 1 << 31, let text = bytes(strOffset, Int(strSize)) else { continue }
                strings = text
            }
            for at in stride(from: 0, to: Int(size) - 23, by: 24) {
                let kind = table[at + 4] & 0xf
                guard kind == 2 || kind == 10 else { continue }   // STT_FUNC, STT_GNU_IFUNC
                let value = integer(table, at + 8, 8), length = integer(table, at + 16, 8)
                guard value != 0 && length != 0 else { continue }
                if let wanted {
                    let at = Int(integer(table, at, 4))
                    guard at + wanted.count <= strings.count, strings[at..<(at + wanted.count)].elementsEqual(wanted) else { continue }
                }
                body(value, value.addingReportingOverflow(length).overflow ? .max : value + length)
            }
        }
        return true
    }
}
