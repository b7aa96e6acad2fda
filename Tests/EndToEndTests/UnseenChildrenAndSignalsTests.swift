// UnseenChildrenAndSignalsTests.swift: children made by _Fork or a raw clone (no fork
// handlers) get records of their own; stacks taken in a signal handler go on through the
// signal frame into the interrupted code.

import Foundation
import Testing

extension EndToEnd {
    @Suite struct UnseenChildren {
        @Test("_Fork and raw clone children: their own record, and none of their blocks in the parent's",
              arguments: ["_Fork", "clone"], bothModes)
        func childWithoutForkHandlers(how: String, settleMs: Int?) throws {
            let program = try E2E.example("fork_unseen")
            try withScratch { scratch in
                let run = try runTracked(program, [how], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                #expect(run.stdoutText == "fork_unseen: done\n")
                #expect(run.stderr.isEmpty, "\(run.stderrText)")
                let dirs = try runDirectories(scratch.memDir)
                #expect(dirs.count == 2, "\(dirs.map(\.name))")
                let parent = try #require(dirs.first { $0.parent == nil })
                let child = try #require(dirs.first { $0.parent == parent.name }, "\(dirs.map { ($0.name, $0.parent) })")
                #expect(parent.blockSizes == [21])
                #expect(child.blockSizes == [42])
                #expect(child.process["ppid"] == parent.process["pid"])
                #expect(parent.state == "exit" && child.state == "exit", "\(parent.status) \(child.status)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [
                    try location("fork_unseen.c", "LEAK: parent"): [21],
                    try location("fork_unseen.c", "LEAK: child"): [42],
                ])
            }
        }
    }

    @Suite struct SignalFrames {
        @Test("signal_leak: a block allocated in a signal handler has the interrupted code below the handler", arguments: bothModes)
        func leakInHandler(settleMs: Int?) throws {
            let program = try E2E.example("signal_leak")
            let f = "signal_leak.c"
            try withScratch { scratch in
                let run = try runTracked(program, [], Tracking(memDir: scratch.memDir, settleMs: settleMs))
                #expect(run.exitedNormally && run.status == 0, "\(run.statusDescription) \(run.stderrText)")
                let report = try resolveReport(scratch.memDir)
                expectResolved(report, [try location(f, "LEAK: handler"): [64]])
                let frames = try #require(report.leaks.first).frames
                let handlerLine = try location(f, "LEAK: handler")
                let interruptedLine = try location(f, "SIGNAL: interrupted"), mainLine = try location(f, "SIGNAL: main")
                let handler = try #require(frames.firstIndex { frame($0, isAt: handlerLine) }, "\(frames)")
                let interrupted = try #require(frames.firstIndex { frame($0, isAt: interruptedLine) }, "\(frames)")
                let main = try #require(frames.firstIndex { frame($0, isAt: mainLine) }, "\(frames)")
                #expect(handler < interrupted && interrupted < main, "\(frames)")
            }
        }
    }
}
