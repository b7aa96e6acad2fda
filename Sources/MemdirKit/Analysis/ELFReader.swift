// ELFReader.swift: what memdir reads from a module file: its GNU build-id (BuildID.swift: pprof's
// mapping, how profilers find the binary, and the --binary check) and the addresses of its exported
// functions (valgrind's XML puts the tracker's malloc or free on top of each stack, as memcheck
// puts its own). ELF64 little-endian only; anything else, or a file that cannot be read, is nil.

struct ELFReader {
    private let file: ReadOnlyFile

    /// Runs `body` with the open file; nil when it cannot be opened or is not ELF64 LE.
    static func with<T>(path: String, _ body: (ELFReader, [UInt8]) -> T?) -> T? {
        guard case .file(let file) = ReadOnlyFile.opening(path) else { return nil }   // a FIFO does not block it
        let reader = ELFReader(file: file)
        guard let header = reader.bytes(0, 64), header[0...3] == [0x7F, 0x45, 0x4C, 0x46], header[4] == 2, header[5] == 1 else { return nil }
        return body(reader, header)
    }

    func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
        guard count > 0, count <= 64 << 20 else { return nil }
        return file.bytes(at: offset, count: count)
    }

    static func le(_ b: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }
}

enum DynamicSymbols {
    static func read(path: String, names: Set<String>) -> [String: UInt64] {
        ELFReader.with(path: path) { elf, header -> [String: UInt64]? in
            let le = ELFReader.le
            let shoff = le(header, 40, 8), shentsize = Int(le(header, 58, 2)), shnum = Int(le(header, 60, 2))
            guard shentsize >= 64, shnum < 65536, let sections = elf.bytes(shoff, shentsize * shnum) else { return nil }
            func section(_ i: Int) -> (type: UInt64, offset: UInt64, size: Int, link: Int) {
                let s = i * shentsize
                return (le(sections, s + 4, 4), le(sections, s + 24, 8), Int(le(sections, s + 32, 8)), Int(le(sections, s + 40, 4)))
            }
            var found: [String: UInt64] = [:]
            for i in 0..<shnum where section(i).type == 11 {   // SHT_DYNSYM
                let symtab = section(i)
                guard symtab.link < shnum, let symbols = elf.bytes(symtab.offset, symtab.size),
                      let strings = elf.bytes(section(symtab.link).offset, section(symtab.link).size) else { continue }
                for at in stride(from: 0, to: symbols.count - 23, by: 24) {
                    let nameAt = Int(le(symbols, at, 4)), value = le(symbols, at + 8, 8)
                    guard value != 0, nameAt < strings.count, symbols[at + 4] & 0xF == 2 else { continue }   // STT_FUNC
                    var end = nameAt
                    while end < strings.count && strings[end] != 0 { end += 1 }
                    let name = String(decoding: strings[nameAt..<end], as: UTF8.self)
                    if names.contains(name) { found[name] = value }
                }
            }
            return found
        } ?? [:]
    }
}
