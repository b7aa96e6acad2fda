// BuildID.swift: an ELF file's GNU build-id (the NT_GNU_BUILD_ID note), read from its program
// headers through ELFReader: pprof's mappings carry it, and `--binary` is checked against the one
// the tracker recorded for the module that ran.

public enum BuildID {
    /// The build-id of `path` for `--binary`: nil when the file has none (or is not ELF64 LE);
    /// throws when it cannot be read at all.
    public static func read(path: String) throws(MemdirError) -> String? {
        switch ReadOnlyFile.opening(path) {
        case .failed(let code): throw .binaryUnreadable(path: path, reason: errnoText(code))
        case .notRegular: throw .binaryUnreadable(path: path, reason: "not a regular file")
        case .file: break
        }
        return ofFile(path)
    }

    /// The build-id in hex, as pprof and debuginfod name binaries; nil when there is none.
    static func ofFile(_ path: String) -> String? {
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
