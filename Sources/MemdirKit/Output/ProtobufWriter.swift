// ProtobufWriter.swift: the few pieces of protobuf's wire format one message needs (varints,
// length-delimited fields, packed repeated integers), and gzip with stored deflate blocks and a
// CRC-32 of our own: pprof files are gzip'd profile.proto messages, and memdir takes no packages
// (zlib's headers are not on every machine; stored blocks need none).

struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, wire: Int) { varint(UInt64(field << 3 | wire)) }

    /// A varint field; zero is protobuf's default and is left out.
    mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, wire: 0)
        varint(value)
    }

    mutating func int(_ field: Int, _ value: Int64) { uint(field, UInt64(bitPattern: value)) }

    mutating func bool(_ field: Int, _ value: Bool) { uint(field, value ? 1 : 0) }

    /// A length-delimited field, written even when empty (a string table's first entry is "").
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        tag(field, wire: 2)
        varint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    /// An embedded message.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }

    /// A packed repeated varint field.
    mutating func packed(_ field: Int, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        var inner = ProtobufWriter()
        for v in values { inner.varint(v) }
        bytes(field, inner.bytes)
    }
}

enum Gzip {
    /// RFC 1952 gzip of `data` in RFC 1951 stored (uncompressed) blocks of at most 65,535 bytes.
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]  // deflate, no flags, no mtime, unknown OS
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 32)
        var start = 0
        repeat {
            let n = min(65535, data.count - start)
            let final = start + n == data.count
            out.append(final ? 1 : 0)  // BFINAL, BTYPE 00: stored; the block starts on a byte
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[start..<(start + n)]
            start += n
        } while start < data.count
        for v in [crc32(data), UInt32(truncatingIfNeeded: data.count)] {
            out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
        }
        return out
    }

    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO 3309, as gzip and zlib compute it).
    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFFFFFF
        for b in data { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFFFFFF
    }
}
