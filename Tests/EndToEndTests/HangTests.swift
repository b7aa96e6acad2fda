// HangTests.swift: issue 17's hangs (items 9-11), on Examples/hangs.c. Each ran to a timeout or
// an abort under the tracker; untraced each exits 0. The racy ones run several times in the test.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A MEM_DIR on tmpfs (/dev/shm) when there is one, as `memdir run` uses: 100,000 synchronous
/// records on a disk take half a minute. Removed afterwards.
func withTmpfsScratch<T>(_ body: (URL) throws -> T) throws -> T {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue else {
        return try withScratch { try body($0.memDir) }
    }
    var template = Array("/dev/shm/memdir-e2e.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp in /dev/shm failed: \(errno)") }
    let root = URL(fileURLWithPath: String(cString: made))
    defer { try? FileManager.default.removeItem(at: root) }
    return try body(root.appendingPathComponent("mem"))
}

extension EndToEnd {
    @Suite struct Hangs {
        /// Item 9: a SIGALRM handler forks (a child that only _exits) 300 times while the main
        /// thread allocates. It hung every time in fork's prepare handler (a record table the
        /// interrupted malloc held) or in glibc's malloc lock, which glibc takes in fork because
        /// the tracker's threads make the program multi-threaded.
        @Test func forkInSignalHandler() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["sigfork", "300"], timeout: 60)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "forks done\n")
            for settle in [50, 0, 50] {
                try withScratch { scratch in
                    let result = try runTracked(program, ["sigfork", "300"],
                                                Tracking(memDir: scratch.memDir, settleMs: settle), timeout: 30)
                    #expect(!result.timedOut, "settle \(settle): hung")
                    #expect(result.exitedNormally && result.status == 0, "settle \(settle): \(result.statusDescription)")
                    #expect(result.stdoutText == "forks done\n")
                    #expect(result.stderrText == "", "settle \(settle): \(result.stderrText)")
                    // The parent's record is whole and says the run ended normally.
                    let parent = try runDirectories(scratch.memDir).filter { $0.parent == nil }
                    #expect(parent.count == 1)
                    #expect(parent.first?.state == "exit")
                    #expect(parent.first?.counter("unrecorded-blocks") == 0)
                    let list = try memdir(["list", scratch.memDir.path])
                    #expect(list.status == 0, "\(list.stdoutText)\(list.stderrText)")
                }
            }
        }

        /// Item 10: a worker thread is parked for good in a SIGUSR2 handler that interrupted its
        /// malloc or free; main then frees 100,000 blocks and exits. It hung in 5 of 6 runs: the
        /// handler kept a record table's lock (main's frees and the exit flush waited for it), or
        /// the quarantine had main release the worker's freed blocks into the worker's arena,
        /// whose lock the parked malloc held. Twelve runs, with both settle modes.
        @Test func threadParkedInSignalHandler() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["parked", "100000"], timeout: 60)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "parked\n")
            for run in 0..<12 {
                try withTmpfsScratch { memDir in
                    let settle = run % 3 == 2 ? 0 : 50
                    let result = try runTracked(program, ["parked", "100000"],
                                                Tracking(memDir: memDir, settleMs: settle), timeout: 20)
                    #expect(!result.timedOut, "run \(run): hung")
                    #expect(result.exitedNormally && result.status == 0, "run \(run): \(result.statusDescription)")
                    #expect(result.stdoutText == "parked\n")
                    #expect(result.stderrText == "", "run \(run): \(result.stderrText)")
                    let record = try onlyRunDirectory(memDir)
                    #expect(record.state == "exit")
                    #expect(record.counter("unrecorded-blocks") == 0 && record.counter("unremoved-records") == 0)
                }
            }
        }

        /// Item 11: keep capabilities (PR_SET_KEEPCAPS), change uid, raise the kept capabilities,
        /// then change gid, as `setpriv --reuid --regid` does. glibc runs every set*id call in all
        /// threads and aborted (134) when the tracker's threads, without the capability the main
        /// thread kept, failed the gid change. Needs root (CI runs as root).
        @Test(.enabled(if: getuid() == 0, "needs root: it changes uid and gid"))
        func keptCapabilitiesThenUidBeforeGid() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["setids", "65534"], timeout: 30)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "ids 65534 65534\n", "\(plain.statusDescription) \(plain.stderrText)")
            for settle in [50, 0] {
                try withTmpfsScratch { memDir in
                    let result = try runTracked(program, ["setids", "65534"], Tracking(memDir: memDir, settleMs: settle), timeout: 30)
                    #expect(result.exitedNormally && result.status == 0, "settle \(settle): \(result.statusDescription) \(result.stderrText)")
                    #expect(result.stdoutText == "ids 65534 65534\n")
                    // The record: whole, or saying it is not.
                    let record = try onlyRunDirectory(memDir)
                    #expect(record.state == "exit" || (record.counter("unrecorded-events") ?? 0) > 0, "\(record.status)")
                }
            }
            // setpriv itself (util-linux), exec'ing a program that runs as nobody: as untraced.
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
            let arguments = ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/echo", "dropped"]
            let plainSetpriv = runPlain("/usr/bin/setpriv", arguments, timeout: 30)
            #expect(plainSetpriv.status == 0 && plainSetpriv.stdoutText == "dropped\n")
            try withTmpfsScratch { memDir in
                let result = try runTracked("/usr/bin/setpriv", arguments, Tracking(memDir: memDir), timeout: 30)
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription) \(result.stderrText)")
                #expect(result.stdoutText == "dropped\n")
                // setpriv's own record: it ended in exec, or it says what it could not write.
                let records = try runDirectories(memDir)
                #expect(records.count == 1)
                let record = try #require(records.first)
                #expect(record.state == "exec" || (record.counter("unrecorded-events") ?? 0) > 0, "\(record.status)")
                // The gate does not pass an incomplete record.
                let list = try memdir(["list", memDir.path, "--json"])
                let summary = (try? JSONSerialization.jsonObject(with: list.stdout) as? [String: Any])?["summary"] as? [String: Any]
                if (record.counter("unrecorded-events") ?? 0) > 0 {
                    #expect(summary?["clean"] as? Bool == false)
                }
            }
        }

        /// Read while fixing: at a fatal signal the handler brought the module map up to date with
        /// dl_iterate_phdr, which waits for the loader's list lock; a thread parked inside a
        /// dl_iterate_phdr callback holds it for good, and the dying program hung (10 s timeout).
        /// Now the writer walks the list and the handler waits at most 2 s: the program dies of
        /// SIGSEGV as untraced, and the record says the module map may be incomplete.
        @Test func fatalSignalWhileTheLoaderIsBusy() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["loaderlock"], timeout: 30)
            #expect(!plain.exitedNormally && plain.status == SIGSEGV && plain.stdoutText == "loader busy\n")
            try withTmpfsScratch { memDir in
                let started = Date()
                let result = try runTracked(program, ["loaderlock"], Tracking(memDir: memDir), timeout: 20)
                #expect(!result.timedOut, "hung")
                #expect(!result.exitedNormally && result.status == SIGSEGV, "\(result.statusDescription)")
                #expect(result.stdoutText == "loader busy\n")
                #expect(Date().timeIntervalSince(started) < 10)
                let record = try onlyRunDirectory(memDir)
                #expect(record.state == "signal" && record.status["signal-name"] == "SIGSEGV", "\(record.status)")
                #expect(record.status["error"] == "updating the module map at a fatal signal: the loader stayed busy: Connection timed out", "\(record.status)")
                #expect((record.counter("unrecorded-events") ?? 0) >= 1)
            }
        }

        /// Read while fixing: the exit brought the module map up to date and the leak check
        /// took its roots with dl_iterate_phdr, on the exiting thread; with a thread parked in a
        /// dl_iterate_phdr callback that waited for good, holding the module map's lock, and
        /// the program could no longer be stopped by SIGTERM (the tracker put the signal aside
        /// until the lock came free). Untraced the program exits 0 at once. Now the writer makes
        /// the walks, the exit waits for them 2 s at most, the check is skipped (without the
        /// modules' data every block would look lost), and the record says it is incomplete.
        /// `loaderfork` forks first: fork's prepare handler walked the list too, and hung.
        @Test(arguments: [("loaderexit", "exit"), ("loaderfork", "fork")])
        func exitWhileTheLoaderIsBusy(mode: String, firstWalk: String) throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, [mode], timeout: 30)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "loader busy at exit\n")
            try withTmpfsScratch { memDir in
                let started = Date()
                let result = try runTracked(program, [mode], Tracking(memDir: memDir), timeout: 20)
                #expect(!result.timedOut, "hung")
                #expect(result.exitedNormally && result.status == 0, "\(result.statusDescription)")
                #expect(result.stdoutText == plain.stdoutText)
                #expect(Date().timeIntervalSince(started) < 10)
                let records = try runDirectories(memDir)
                #expect(records.count == (mode == "loaderfork" ? 2 : 1), "\(records.map(\.name))")
                if mode == "loaderfork" {
                    let child = try #require(records.first { $0.parent != nil })
                    #expect(child.state == "exit" && child.status["code"] == "0", "\(child.status)")
                }
                let record = try #require(records.first { $0.parent == nil })
                #expect(record.state == "exit", "\(record.status)")
                #expect(record.status["error"] == "updating the module map at \(firstWalk): the loader stayed busy: Connection timed out", "\(record.status)")
                #expect((record.counter("unrecorded-events") ?? 0) >= 1)
                #expect(record.blockSizes.contains(555), "the leaked block is still recorded: \(record.blockSizes)")
                let check = try #require(try LeakCheck.read(record))
                #expect(check.complete && check.result == "skipped the loader's list was not walked in time", "\(check.fields)")
                // The gate does not pass it.
                let list = try memdir(["list", memDir.path, "--json"])
                let summary = (try? JSONSerialization.jsonObject(with: list.stdout) as? [String: Any])?["summary"] as? [String: Any]
                #expect(summary?["clean"] as? Bool == false, "\(list.stdoutText)")
            }
        }

        /// The tracker's handler now sits in front of every program handler (item 10). A handler
        /// reset by SA_RESETHAND on a signal whose default is not fatal (SIGCHLD) must leave the
        /// default to the kernel: the program goes on, and its record ends in `exit`.
        @Test func resetHandlerOfAnIgnoredByDefaultSignal() throws {
            let program = try E2E.example("hangs")
            let plain = runPlain(program, ["resethand"], timeout: 30)
            #expect(plain.exitedNormally && plain.status == 0 && plain.stdoutText == "seen 1 reset 1\n", "\(plain.stdoutText)")
            try withTmpfsScratch { memDir in
                let result = try runTracked(program, ["resethand"], Tracking(memDir: memDir), timeout: 30)
                #expect(result.exitedNormally && result.status == 0 && result.stdoutText == plain.stdoutText, "\(result.stdoutText)")
                let parent = try runDirectories(memDir).filter { $0.parent == nil }
                #expect(parent.count == 1 && parent.first?.state == "exit", "\(parent.map(\.status))")
            }
        }
    }
}
