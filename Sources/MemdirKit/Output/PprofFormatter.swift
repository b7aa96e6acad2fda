// PprofFormatter.swift: the live blocks of a report as a pprof heap profile (gzip'd
// profile.proto, github.com/google/pprof/proto/profile.proto), which `go tool pprof`,
// speedscope and continuous profilers (Pyroscope, Parca, Grafana, Cloud Profiler) read.
// Sample types inuse_objects/count and inuse_space/bytes, one sample per loss record (the
// report is grouped by whole stack), labelled with its kind and pid. One location per return
// address, moved back into the call as for addr2line, with its mapping (module, build-id) and,
// when resolved, a line per inlined function. Per-stack allocation totals are not recorded, so
// there are no alloc_* sample types; the process's counters go into the comments.

public struct PprofFormatter {
    public var timeNanos: Int64
    public var comments: [String]

    public init(timeNanos: Int64, comments: [String] = []) {
        self.timeNanos = timeNanos
        self.comments = comments
    }

    /// The gzip'd profile.
    public func format(_ report: Report) -> [UInt8] { Gzip.stored(profile(report)) }

    /// The profile.proto message, not compressed.
    public func profile(_ report: Report) -> [UInt8] {
        var strings: [String] = [""]
        var stringIndex: [String: Int64] = ["": 0]
        func s(_ text: String) -> Int64 {
            if let i = stringIndex[text] { return i }
            strings.append(text)
            stringIndex[text] = Int64(strings.count - 1)
            return Int64(strings.count - 1)
        }

        struct MappingKey: Hashable { var process: Int; var path: String }
        struct MappingInfo { var id: UInt64; var start: UInt64; var limit: UInt64; var path: String; var resolved: Bool; var inlined: Bool }
        struct LocationKey: Hashable { var process: Int; var address: UInt64 }
        struct FunctionKey: Hashable { var name: String; var system: String; var file: String }
        var mappings: [MappingKey: MappingInfo] = [:]
        var mappingOrder: [MappingKey] = []
        var locations: [LocationKey: UInt64] = [:]
        var out = ProtobufWriter()
        var locationMessages = ProtobufWriter()
        var functions: [FunctionKey: UInt64] = [:]
        var functionMessages = ProtobufWriter()
        var samples = ProtobufWriter()

        func location(_ f: Frame, process: Int) -> UInt64 {
            let key = LocationKey(process: process, address: f.address)
            if let id = locations[key] { return id }
            let id = UInt64(locations.count + 1)
            locations[key] = id
            var mappingID: UInt64 = 0
            if let path = f.module, let offset = f.offset {
                let mk = MappingKey(process: process, path: path)
                let base = f.address &- offset
                if var m = mappings[mk] {
                    m.start = min(m.start, base); m.limit = max(m.limit, f.address + 1)
                    m.resolved = m.resolved || !f.symbols.isEmpty; m.inlined = m.inlined || f.symbols.count > 1
                    mappings[mk] = m
                } else {
                    mappings[mk] = MappingInfo(id: UInt64(mappings.count + 1), start: base, limit: f.address + 1, path: path,
                                               resolved: !f.symbols.isEmpty, inlined: f.symbols.count > 1)
                    mappingOrder.append(mk)
                }
                mappingID = mappings[mk]!.id
            }
            locationMessages.message(4) { l in
                l.uint(1, id)
                l.uint(2, mappingID)
                l.uint(3, ReportBuilder.adjusted(f.address))
                for sym in f.symbols {   // innermost first: the last line is the caller the others are inlined into
                    let fk = FunctionKey(name: sym.function ?? "??", system: sym.mangled ?? sym.function ?? "??", file: sym.file ?? "")
                    let fid: UInt64
                    if let known = functions[fk] { fid = known } else {
                        fid = UInt64(functions.count + 1)
                        functions[fk] = fid
                        let name = s(fk.name), system = s(fk.system), file = s(fk.file)
                        functionMessages.message(5) { fn in
                            fn.uint(1, fid); fn.int(2, name); fn.int(3, system); fn.int(4, file)
                        }
                    }
                    l.message(4) { line in line.uint(1, fid); line.int(2, Int64(sym.line ?? 0)) }
                }
            }
            return id
        }

        // Sample types first: their strings take the first indices, as pprof's own writer does.
        let objects = (s("inuse_objects"), s("count")), space = (s("inuse_space"), s("bytes"))
        let kindKey = s("kind"), pidKey = s("pid")
        for (i, p) in report.processes.enumerated() {
            for g in p.leaks {
                let ids = g.stack.map { location($0, process: i) }
                let kind = s(g.kind.jsonName)
                samples.message(2) { sample in
                    sample.packed(1, ids)
                    sample.packed(2, [UInt64(g.blocks), g.bytes])
                    sample.message(3) { l in l.int(1, kindKey); l.int(2, kind) }
                    if let pid = p.process?.pid { sample.message(3) { l in l.int(1, pidKey); l.int(3, Int64(pid)) } }
                }
            }
        }
        var mappingMessages = ProtobufWriter()
        for mk in mappingOrder {
            let m = mappings[mk]!
            let file = s(m.path)
            let buildID = s(BuildID.ofFile(m.path) ?? "")
            mappingMessages.message(3) { w in
                w.uint(1, m.id); w.uint(2, m.start); w.uint(3, m.limit); w.uint(4, 0)
                w.int(5, file); w.int(6, buildID)
                w.bool(7, m.resolved); w.bool(8, m.resolved); w.bool(9, m.resolved); w.bool(10, m.inlined)
            }
        }
        let commentIDs = comments.map { s($0) }
        let periodType = s("space")

        out.message(1) { t in t.int(1, objects.0); t.int(2, objects.1) }
        out.message(1) { t in t.int(1, space.0); t.int(2, space.1) }
        out.bytes += samples.bytes
        out.bytes += mappingMessages.bytes
        out.bytes += locationMessages.bytes
        out.bytes += functionMessages.bytes
        for text in strings { out.string(6, text) }
        out.int(9, timeNanos)
        out.message(11) { t in t.int(1, periodType); t.int(2, space.1) }
        for c in commentIDs { out.int(13, c) }
        out.int(14, space.0)
        return out.bytes
    }
}
