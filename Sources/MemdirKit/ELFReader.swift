// ELFReader.swift: the two things the other-tool formats read from a module file: its GNU
// build-id (pprof's mapping, how profilers find the binary) and the addresses of its exported
// functions (valgrind's XML puts the tracker's malloc or free on top of each stack, as memcheck
// puts its own). ELF64 little-endian only; anything else, or a file that cannot be read, is nil.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

struct ELFReader {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Runs `body` with the open file; nil when it cannot be opened or is not ELF64 LE.
    static func with<T>(path: String, _ body: (ELFReader, [UInt8]) -> T?) -> T? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let reader = ELFReader(fd: fd)
        guard let header = reader.bytes(0, 64), header[0...3] == [0x7F, 0x45, 0x4C, 0x46], header[4] == 2, header[5] == 1 else { return nil }
        return body(reader, header)
    }

    func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
        guard count > 0, count <= 64 << 20 else { return nil }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return n == count ? buffer : nil
    }

    static func le(_ b: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }
}

/// The GNU build-id of an ELF file (its NT_GNU_BUILD_ID note), in hex, as pprof and debuginfod
/// name binaries.
enum BuildID {
    static func read(path: String) -> String? {
        ELFReader.with(path: path) { elf, header in
            let le = ELFReader.le
            let phoff = le(header, 32, 8), phentsize = Int(le(header, 54, 2)), phnum = Int(le(header, 56, 2))
            guard phentsize >= 56, phnum < 4096, let table = elf.bytes(phoff, phentsize * phnum) else { return nil }
            for i in 0..<phnum {
                let ph = i * phentsize
                guard le(table, ph, 4) == 4 else { continue }   // PT_NOTE
                guard let notes = elf.bytes(le(table, ph + 8, 8), Int(le(table, ph + 32, 8))) else { continue }
                var at = 0
                while at + 12 <= notes.count {
                    let namesz = Int(le(notes, at, 4)), descsz = Int(le(notes, at + 4, 4)), type = le(notes, at + 8, 4)
                    let name = at + 12, desc = name + (namesz + 3) & ~3
                    guard desc + descsz <= notes.count else { break }
                    if type == 3, namesz == 4, notes[name..<name + 3] == [0x47, 0x4E, 0x55] {   // NT_GNU_BUILD_ID, "GNU"
                        return notes[desc..<desc + descsz].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
                    }
                    at = desc + (descsz + 3) & ~3
                }
            }
            return nil
        }
    }
}

/// The values (file addresses) of the exported functions named `names`, from `.dynsym`.
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
