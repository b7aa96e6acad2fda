// BuildID.swift: an ELF file's GNU build-id (the NT_GNU_BUILD_ID note), read from its program
// headers, so that `--binary` can be checked against the module the tracker recorded.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum BuildID {
    /// The build-id of the 64-bit little-endian ELF file at `path` as lowercase hex; nil when
    /// the file has none (or is not such an ELF file). Throws when the file cannot be read.
    public static func read(path: String) throws(MemdirError) -> String? {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { throw .binaryUnreadable(path: path, reason: errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw .binaryUnreadable(path: path, reason: "not a regular file")
        }
        func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count >= 0, count <= 1 << 20, offset <= UInt64(Int64.max) else { return nil }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buffer : nil
        }
        func u16(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(b[at]) | UInt64(b[at + 1]) << 8 }
        func u32(_ b: [UInt8], _ at: Int) -> UInt64 { u16(b, at) | u16(b, at + 2) << 16 }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { u32(b, at) | u32(b, at + 4) << 32 }

        guard let header = bytes(0, 64), header[0] == 0x7F, header[1] == 0x45, header[2] == 0x4C, header[3] == 0x46,
              header[4] == 2 /* 64-bit */, header[5] == 1 /* little-endian */ else { return nil }
        let programHeaders = u64(header, 32), entrySize = Int(u16(header, 54)), count = Int(u16(header, 56))
        guard entrySize >= 56, count > 0, let table = bytes(programHeaders, entrySize * count) else { return nil }
        for i in 0..<count {
            let at = i * entrySize
            guard u32(table, at) == 4 /* PT_NOTE */ else { continue }
            let offset = u64(table, at + 8), size = u64(table, at + 32)
            guard size <= 1 << 20, let notes = bytes(offset, Int(size)) else { continue }
            var p = 0
            while p + 12 <= notes.count {
                let nameSize = Int(u32(notes, p)), descSize = Int(u32(notes, p + 4)), type = u32(notes, p + 8)
                let name = p + 12, desc = name + ((nameSize + 3) & ~3), next = desc + ((descSize + 3) & ~3)
                guard next <= notes.count, next > p else { break }
                if type == 3 /* NT_GNU_BUILD_ID */ && nameSize == 4 && Array(notes[name..<name + 4]) == [0x47, 0x4E, 0x55, 0] {
                    return notes[desc..<desc + descSize].map { String($0, radix: 16).leftPadded(2) }.joined()
                }
                p = next
            }
        }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
