// Counters.swift: reads a run directory's `counters` file (the catalog's Record format, "counters"): the tracker's
// allocation statistics, kept in per-thread slots of a mapped file, summed here.

/// The entry points in the tracker's `via` order: calls[i] counts entry point i.
public let counterEntryPoints = ["malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
                                 "memalign", "valloc", "pvalloc", "free", "cfree", "new", "new[]", "new-aligned", "new[]-aligned"]

/// The sums of one `counters` file.
public struct Counters: Equatable, Sendable {
    /// Calls per entry point, in `counterEntryPoints` order.
    public var calls: [UInt64]
    public var bytesRequested: UInt64
    /// Live heap in usable bytes (exact at the moment of reading), and blocks.
    public var heapCurrent: Int64
    public var liveBlocks: Int64
    /// The peak, low by at most `peakTolerance` bytes per thread (see the catalog's Long-running programs).
    public var heapPeak: Int64
    public var peakTolerance: UInt64
    /// histogram[b]: allocations whose size has bit length b (b = 0: size 0; else 2^(b-1)...2^b-1).
    public var histogram: [UInt64]
    /// Slots that counted anything: threads that allocated.
    public var threads: Int

    public var allocations: UInt64 { calls.enumerated().filter { $0.offset < 9 }.reduce(0) { $0 &+ $1.element } }

    /// Frees: `free` and `cfree` calls.
    public var frees: UInt64 { calls[9].addingReportingOverflow(calls[10]).overflow ? .max : calls[9] + calls[10] }

    /// The bucket's range of sizes, inclusive.
    public static func bucketRange(_ b: Int) -> ClosedRange<UInt64> {
        b == 0 ? 0...0 : (b >= 64 ? (UInt64(1) << 63)...UInt64.max : (UInt64(1) << (b - 1))...((UInt64(1) << b) - 1))
    }
}

public enum CountersReader {
    static let magic = Array("memtrack/1 counters\n".utf8)
    static let headerWords = (slotCount: 4, slotWords: 5, slotsOffset: 6, buckets: 7, publishBytes: 8,
                              heapPublished: 9, heapPeak: 10)
    static let slot = (calls: 0, bytes: 16, heapDelta: 17, liveBlocks: 18, deltaHigh: 19, histogram: 32)

    /// The largest counters file read: the tracker's is 4 KiB of header and 129 slots of 1 KiB
    /// (counters.h: 136 KiB); 1 MiB leaves room for more slots and nothing for a sparse file.
    public static let maximumSize = 1024 * 1024

    /// Reads `counters` in a run directory. Throws for a missing (`noCounters`), short, foreign
    /// or oversized file, and for anything but a regular file (never opened blocking).
    public static func read(runDirectory: String) throws(MemdirError) -> Counters {
        let path = Scanner.join(runDirectory, "counters")
        switch readBytes(path, limit: maximumSize) {
        case .failure(Errno.noEntry): throw .noCounters(path: runDirectory)
        case .failure(let code): throw .malformedRecord(path: path, reason: errnoText(code).lowercasedFirst)
        case .rejected(let why): throw .malformedRecord(path: path, reason: why)
        case .success(let bytes): return try parse(bytes, path: path)
        }
    }

    public static func parse(_ bytes: [UInt8], path: String) throws(MemdirError) -> Counters {
        guard bytes.count >= 4096 else { throw .malformedRecord(path: path, reason: "truncated counters file") }
        if !bytes.starts(with: magic) {
            let prefix = Array("memtrack/".utf8)
            if bytes.starts(with: prefix) {
                let version = bytes[prefix.count...].prefix { $0 != UInt8(ascii: " ") && $0 != 10 }
                throw .unsupportedVersion(path: path, version: String(decoding: version, as: UTF8.self))
            }
            throw .malformedRecord(path: path, reason: "not a counters file")
        }
        func word(_ index: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(bytes[index * 8 + k]) << (8 * k) }
            return v
        }
        // The layout words are checked before any is used as a number: each must fit in the
        // file (which is at most `maximumSize` bytes), so no product below can overflow.
        let limit = UInt64(bytes.count)
        let rawSlotCount = word(headerWords.slotCount), rawSlotWords = word(headerWords.slotWords)
        let rawOffset = word(headerWords.slotsOffset), rawBuckets = word(headerWords.buckets)
        guard rawSlotCount >= 1, rawSlotCount <= limit, rawSlotWords <= limit, rawOffset <= limit, rawBuckets <= 65,
              rawOffset >= 8 * UInt64(headerWords.heapPeak + 1) else {
            throw .malformedRecord(path: path, reason: "counters layout does not fit the file")
        }
        let slotCount = Int(rawSlotCount), slotWords = Int(rawSlotWords), slotsOffset = Int(rawOffset), buckets = Int(rawBuckets)
        let (slotsBytes, overflow) = slotCount.multipliedReportingOverflow(by: slotWords * 8)
        guard slotWords >= slot.histogram + buckets, slotsOffset % 8 == 0, !overflow,
              slotsOffset + slotsBytes <= bytes.count else {
            throw .malformedRecord(path: path, reason: "counters layout does not fit the file")
        }
        var c = Counters(calls: Array(repeating: 0, count: counterEntryPoints.count), bytesRequested: 0,
                         heapCurrent: Int64(bitPattern: word(headerWords.heapPublished)), liveBlocks: 0,
                         heapPeak: Int64(bitPattern: word(headerWords.heapPeak)),
                         peakTolerance: word(headerWords.publishBytes),
                         histogram: Array(repeating: 0, count: buckets), threads: 0)
        let published = c.heapCurrent
        var highs: Int64 = 0
        for s in 0..<slotCount {
            let base = slotsOffset / 8 + s * slotWords
            var used = false
            for i in c.calls.indices { let v = word(base + slot.calls + i); c.calls[i] &+= v; used = used || v != 0 }
            c.bytesRequested &+= word(base + slot.bytes)
            c.heapCurrent &+= Int64(bitPattern: word(base + slot.heapDelta))
            c.liveBlocks &+= Int64(bitPattern: word(base + slot.liveBlocks))
            highs &+= max(0, Int64(bitPattern: word(base + slot.deltaHigh)))
            for b in 0..<buckets { c.histogram[b] &+= word(base + slot.histogram + b) }
            if used && s < slotCount - 1 { c.threads += 1 }
        }
        c.heapPeak = max(c.heapPeak, c.heapCurrent, published &+ highs)
        return c
    }
}
