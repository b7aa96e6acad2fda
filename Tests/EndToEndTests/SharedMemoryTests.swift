// SharedMemoryTests.swift: the seeds' three shared-memory examples (anonymous mmap, /dev/zero,
// shmget without IPC_RMID), each reported exactly, and their corrected versions reported clean.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `0xADDR.map` and `*.shm` records of a run directory: file name -> record.
func sharedMemoryRecords(_ dir: RunDirectory) throws -> [String: RecordLine] {
    var result: [String: RecordLine] = [:]
    for file in dir.files where file.hasSuffix(".map") || file.hasSuffix(".shm") {
        let text = try String(contentsOf: dir.url.appendingPathComponent(file), encoding: .utf8)
        var line = text.split(separator: "\n").first ?? ""
        // A POSIX segment's name runs to the end of the line and may hold spaces.
        var name: String?
        if let range = line.range(of: " name=") {
            name = String(line[range.upperBound...])
            line = line[..<range.lowerBound]
        }
        var record = try RecordLine(parsing: line)
        if let name { record.fields["name"] = name }
        result[file] = record
    }
    return result
}

/// The run directory of the first process (the one not forked from another).
func parentRunDirectory(_ memDir: URL) throws -> (RunDirectory, [RunDirectory]) {
    let dirs = try runDirectories(memDir)
    let parents = dirs.filter { $0.parent == nil }
    try #require(parents.count == 1, "expected one parent run directory, found \(dirs.map(\.name))")
    return (parents[0], dirs.filter { $0.parent != nil })
}

/// Removes a SysV segment a test run created, whatever the test's outcome.
func removeSegment(_ id: Int32?) {
    if let id { _ = shmctl(id, IPC_RMID, nil) }
}

/// The segment id the example printed as `id N`.
func printedSegmentID(_ run: RunResult) -> Int32? {
    run.stdoutText.split(separator: "\n").first { $0.hasPrefix("id ") }.flatMap { Int32($0.dropFirst(3)) }
}

func segmentExists(_ id: Int32) -> Bool {
    var info = shmid_ds()
    return shmctl(id, IPC_STAT, &info) == 0
}

extension EndToEnd {
    @Suite struct SharedMemory {
        @Test("anonymous and /dev/zero shared mappings never unmapped: one mapping each, at the mmap line",
              arguments: [("shm_anonymous", "anonymous", "MMAP-ANON"), ("shm_dev_zero", "dev-zero", "MMAP-DEV-ZERO")])
        func mappingLeak(example: String, kind: String, marker: String) throws {
            let program = try E2E.example(example)
            try withScratch { scratch in
                let run = try runTracked(program, ["leak"], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                #expect(run.stdoutText == "parent: abcdefghijklmnopqrstuvwxyz\n")
                let (parent, children) = try parentRunDirectory(scratch.memDir)
                let records = try sharedMemoryRecords(parent)
                #expect(records.count == 1, "\(records.keys.sorted())")
                let (name, record) = try #require(records.first)
                #expect(record.kind == "mapping")
                #expect(name == "\(record.address ?? "?").map")
                #expect(record.size == 4096)
                #expect(record.fields["via"] == "mmap")
                #expect(record.fields["kind"] == kind)
                #expect(record.fields["shared"] == "1")
                #expect(parent.blocks.isEmpty)
                // The child unmapped its inherited copy: nothing of its own to report.
                #expect(children.count == 1)
                for child in children { #expect(try sharedMemoryRecords(child).isEmpty) }

                let report = try memdir(["resolve", scratch.memDir.path, "--json"])
                #expect(report.status == 0, "\(report.stderrText)")
                let json = try parseJSON(report)
                let summary = try #require(json["summary"] as? [String: Any])
                #expect(summary["mappings"] as? Int == 1)
                #expect(summary["segments"] as? Int == 0)
                #expect(summary["leaked_blocks"] as? Int == 0)
                #expect(summary["clean"] as? Bool == false)
                let processes = try #require(json["processes"] as? [[String: Any]])
                let mappings = processes.flatMap { ($0["mappings"] as? [[String: Any]]) ?? [] }
                #expect(mappings.count == 1)
                let location = try #require(mappings.first?["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("\(example).c", marker)), "\(location)")

                let table = try memdir(["resolve", scratch.memDir.path])
                #expect(table.stdoutText.contains("mappings still mapped at exit: 1, 4,096 bytes"), "\(table.stdoutText)")

                // A mapping is a finding: --error-exitcode applies.
                let viaRun = try memdir(["run", "--error-exitcode", "9", "--dir", scratch.root.appendingPathComponent("run").path,
                                         "--", program, "leak"])
                #expect(viaRun.status == 9, "\(viaRun.stderrText)")
            }
        }

        @Test("the corrected mmap examples report nothing (also when a destructor unmaps during exit)",
              arguments: [("shm_anonymous", "fixed"), ("shm_dev_zero", "fixed"), ("shm_anonymous", "destructor")])
        func mappingFixed(example: String, mode: String) throws {
            let program = try E2E.example(example)
            try withScratch { scratch in
                let run = try runTracked(program, [mode], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                for dir in try runDirectories(scratch.memDir) { #expect(try sharedMemoryRecords(dir).isEmpty, "\(dir.files)") }
                let report = try memdir(["list", scratch.memDir.path])
                #expect(report.status == 0)
                #expect(report.stdoutText.hasSuffix("no leaks, no bad frees in 2 processes\n"), "\(report.stdoutText)")
            }
        }

        @Test("shmget without IPC_RMID: one segment outliving the process, with key, id, size and stack")
        func segmentLeak() throws {
            let program = try E2E.example("shm_sysv")
            try withScratch { scratch in
                let run = try runTracked(program, ["leak"], Tracking(memDir: scratch.memDir))
                let id = printedSegmentID(run)
                defer { removeSegment(id) }
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                let segment = try #require(id, "no id printed: \(run.stdoutText)")
                let (parent, children) = try parentRunDirectory(scratch.memDir)
                let records = try sharedMemoryRecords(parent)
                // Detached by both processes: the segment is the only record, named by its id.
                #expect(Array(records.keys) == ["shm-\(segment).shm"])
                let record = try #require(records["shm-\(segment).shm"])
                #expect(record.kind == "segment")
                #expect(record.int("id") == Int(segment))
                #expect(record.fields["key"] == "0x0")
                #expect(record.size == 1024)
                #expect(record.fields["via"] == "shmget")
                for child in children { #expect(try sharedMemoryRecords(child).isEmpty) }

                let json = try parseJSON(try memdir(["resolve", scratch.memDir.path, "--json"]))
                let summary = try #require(json["summary"] as? [String: Any])
                #expect(summary["segments"] as? Int == 1)
                #expect(summary["mappings"] as? Int == 0)
                let processes = try #require(json["processes"] as? [[String: Any]])
                let segments = processes.flatMap { ($0["segments"] as? [[String: Any]]) ?? [] }
                #expect(segments.count == 1)
                let first = try #require(segments.first)
                #expect(first["kind"] as? String == "sysv")
                #expect(first["id"] as? Int == Int(segment))
                #expect(first["exists_now"] as? Bool == true)
                let location = try #require(first["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("shm_sysv.c", "SHMGET")), "\(location)")

                // `memdir list` tells whether the segment is still on the system.
                let before = try memdir(["list", scratch.memDir.path])
                #expect(before.stdoutText.contains("SysV segment id \(segment) key 0x00000000, 1,024 bytes (shmget) at "), "\(before.stdoutText)")
                #expect(before.stdoutText.contains("; still exists\n"), "\(before.stdoutText)")
                removeSegment(segment)
                let after = try memdir(["list", scratch.memDir.path])
                #expect(after.stdoutText.contains("; gone now\n"), "\(after.stdoutText)")
            }
        }

        @Test("shmget, then IPC_RMID: nothing reported, and the segment is gone")
        func segmentFixed() throws {
            let program = try E2E.example("shm_sysv")
            try withScratch { scratch in
                let run = try runTracked(program, ["fixed"], Tracking(memDir: scratch.memDir))
                let id = printedSegmentID(run)
                defer { removeSegment(id) }
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                let segment = try #require(id)
                #expect(!segmentExists(segment))
                for dir in try runDirectories(scratch.memDir) { #expect(try sharedMemoryRecords(dir).isEmpty, "\(dir.files)") }
                let report = try memdir(["list", scratch.memDir.path])
                #expect(report.stdoutText.hasSuffix("no leaks, no bad frees in 2 processes\n"), "\(report.stdoutText)")
            }
        }

        @Test("a SysV segment still attached at exit is a mapping too, and the segment outlives the process")
        func segmentAttached() throws {
            let program = try E2E.example("shm_sysv")
            try withScratch { scratch in
                let run = try runTracked(program, ["attached"], Tracking(memDir: scratch.memDir))
                let id = printedSegmentID(run)
                defer { removeSegment(id) }
                let segment = try #require(id)
                let (parent, _) = try parentRunDirectory(scratch.memDir)
                let records = try sharedMemoryRecords(parent)
                #expect(records.count == 2, "\(records.keys.sorted())")
                let mapping = try #require(records.values.first { $0.kind == "mapping" })
                #expect(mapping.fields["kind"] == "sysv")
                #expect(mapping.fields["via"] == "shmat")
                #expect(mapping.int("id") == Int(segment))
                #expect(mapping.size == 4096)
                #expect(records["shm-\(segment).shm"] != nil)
            }
        }

        @Test("partial munmap and mremap: the one piece left is recorded at its final address and size")
        func partialUnmap() throws {
            let program = try E2E.example("shm_partial")
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                let words = run.stdoutText.split(whereSeparator: { $0 == " " || $0 == "\n" })
                try #require(words.count == 3 && words[0] == "left", "\(run.stdoutText)")
                let records = try sharedMemoryRecords(try onlyRunDirectory(scratch.memDir))
                #expect(Array(records.keys) == ["\(words[1]).map"])
                #expect(records.values.first?.size == Int(words[2]))
                #expect(records.values.first?.fields["via"] == "mmap")
                let json = try parseJSON(try memdir(["resolve", scratch.memDir.path, "--json"]))
                let processes = try #require(json["processes"] as? [[String: Any]])
                let location = try #require((processes.first?["mappings"] as? [[String: Any]])?.first?["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("shm_partial.c", "PARTIAL-MMAP")), "\(location)")
            }
        }

        @Test("POSIX shm_open without shm_unlink: one segment outliving the process; with it, nothing",
              arguments: ["leak", "fixed"])
        func posixSegment(mode: String) throws {
            let program = try E2E.example("shm_posix")
            let name = "/memdir-e2e \(getpid())-\(mode)"
            defer { _ = shm_unlink(name) }
            try withScratch { scratch in
                let run = try runTracked(program, [mode, name], Tracking(memDir: scratch.memDir))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription)\n\(run.stderrText)")
                let records = try sharedMemoryRecords(try onlyRunDirectory(scratch.memDir))
                let list = try memdir(["list", scratch.memDir.path])
                if mode == "fixed" {
                    #expect(records.isEmpty)
                    #expect(list.stdoutText.hasSuffix("no leaks, no bad frees in 1 process\n"), "\(list.stdoutText)")
                    return
                }
                let fileName = "posix-memdir-e2e%20\(getpid())-leak.shm"
                #expect(Array(records.keys) == [fileName])
                #expect(records[fileName]?.kind == "posix-segment")
                #expect(records[fileName]?.fields["name"] == name)
                #expect(records[fileName]?.fields["via"] == "shm_open")
                #expect(list.stdoutText.contains("POSIX segment \(name) (shm_open) at "), "\(list.stdoutText)")
                #expect(list.stdoutText.contains("; still exists\n"))
                let json = try parseJSON(try memdir(["resolve", scratch.memDir.path, "--json"]))
                let processes = try #require(json["processes"] as? [[String: Any]])
                let segment = try #require((processes.first?["segments"] as? [[String: Any]])?.first)
                #expect(segment["name"] as? String == name)
                #expect(segment["exists_now"] as? Bool == true)
                let location = try #require(segment["location"] as? String)
                #expect(frame(location, isAt: try EndToEndTests.location("shm_posix.c", "SHM-OPEN")), "\(location)")
                _ = shm_unlink(name)
                #expect(try memdir(["list", scratch.memDir.path]).stdoutText.contains("; gone now\n"))
            }
        }
    }
}
