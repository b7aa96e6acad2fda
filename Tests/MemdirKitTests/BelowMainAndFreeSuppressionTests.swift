// BelowMainAndFreeSuppressionTests.swift: where stacks stop (valgrind's --show-below-main=no),
// `Memcheck:Free` entries for bad frees, and the default suppressions' reach: they take
// XCTest's own blocks and never a test's.

import Testing
@testable import MemdirKit

private func frame(_ name: String, module: String = "/work/prog", offset: UInt64 = 0x1000) -> Frame {
    Frame(address: 0x400000 + offset, module: module, offset: offset,
          symbols: [Symbol(function: name, file: nil, line: nil, mangled: name)])
}

private let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"

@Suite struct BelowMainTests {
    @Test func stopsAtMainElseAtGlibcStartElseNowhere() {
        let full = [frame("leaf"), frame("main"), frame("__libc_start_call_main", module: libc),
                    frame("__libc_start_main_impl", module: libc), frame("_start")]
        #expect(BelowMain.shownCount(full) == 2)
        // exit's handlers and late destructors: no main, glibc's start-up is "(below main)".
        let atExit = [frame("cleanup"), frame("__run_exit_handlers", module: libc), frame("exit", module: libc),
                      frame("__libc_start_call_main", module: libc), frame("__libc_start_main_impl", module: libc), frame("_start")]
        #expect(BelowMain.shownCount(atExit) == 4)
        let thread = [frame("worker"), frame("start_thread", module: libc), frame("clone3", module: libc)]
        #expect(BelowMain.shownCount(thread) == 3)
        #expect(BelowMain.shownCount([]) == 0)
        // main inlined into nothing but holding an inlined callee: the frame is kept whole.
        var inlined = frame("helper")
        inlined.symbols.append(Symbol(function: "main", file: nil, line: nil, mangled: "main"))
        #expect(BelowMain.shownCount([frame("malloc_wrapper"), inlined, frame("_start")]) == 2)
        // A frame without symbols is main when the caller says so (the executable's symbol table).
        let unresolved = [Frame(address: 1, module: "/work/prog", offset: 0x1189), Frame(address: 2, module: libc, offset: 0x29d90)]
        #expect(BelowMain.shownCount(unresolved) { $0.offset == 0x1189 } == 1)
        #expect(BelowMain.shownCount(unresolved) == 2)
    }

    @Test func valgrindsBelowMainNameMatchesAndIsWritten() throws {
        let stack = [frame("cleanup"), frame("__libc_start_call_main", module: libc)]
        let s = try SuppressionParser.parse("{\n x\n Memcheck:Leak\n fun:malloc\n fun:cleanup\n fun:(below main)\n}\n", file: "b.supp")
        #expect(SuppressionMatcher.match(s, stack: MatchFrame.stack(stack, via: "malloc"), kind: .definitelyLost) == 0)
        let group = LeakGroup(kind: .definitelyLost, blocks: 1, bytes: 1, stack: stack, attributed: Attribution(frame: 0, symbol: 0),
                              sample: BlockSample(address: 0x10, size: 1, seq: 1, thread: 1, ms: 0, via: "malloc", stack: []))
        #expect(SuppressionWriter.entry(for: group).contains("   fun:cleanup\n   fun:(below main)\n}\n"))
    }
}

@Suite struct FreeSuppressionTests {
    func badFree(_ kind: String, via: String, _ stack: [Frame]) -> BadFree {
        BadFree(record: BadFreeRecord(kind: kind, address: 0x10, seq: 1, thread: 1, ms: 0, via: via, stack: [], file: "bad-1.free"),
                stack: stack, attributed: Attribution(frame: 0, symbol: 0))
    }

    @Test func kindsThatApplyAndKindsThatNeverMatch() throws {
        let text = """
            {
               free-in-main
               Memcheck:Free
               fun:free
               fun:main
            }
            {
               an invalid read
               Memcheck:Addr8
               fun:main
            }
            {
               a kind of a later valgrind, or none at all
               Memcheck:ReallocZero
               fun:main
            }
            {
               sized
               Memcheck:SizeMismatch
               fun:_ZdlPvm
               fun:main
            }
            leak:main

            """
        let s = try SuppressionParser.parse(text, file: "f.supp")
        #expect(s.map(\.name) == ["free-in-main", "sized", "leak:main"])
        #expect(s.map(\.target) == [.badFree(nil), .badFree(["mismatched-size"]), .leak])
        let stack = MatchFrame.stack([frame("main")], via: "free")
        for kind in ["double-free", "invalid-free", "mismatched-free", "mismatched-size"] {
            #expect(SuppressionMatcher.matchBadFree(s, stack: stack, kind: kind) == 0, "\(kind)")
        }
        // A Free entry never takes a leak, and LSan's leak: lines never take a bad free.
        #expect(SuppressionMatcher.match(Array(s.prefix(2)), stack: MatchFrame.stack([frame("main")], via: "malloc"), kind: .definitelyLost) == nil)
        #expect(SuppressionMatcher.matchBadFree([s[2]], stack: stack, kind: "double-free") == nil)
        // operator delete: the tracker says `delete`; valgrind's entry names the form it saw.
        let deleted = MatchFrame.stack([frame("main")], via: "delete")
        #expect(SuppressionMatcher.matchBadFree([s[1]], stack: deleted, kind: "mismatched-size") == 0)
        #expect(SuppressionMatcher.matchBadFree([s[1]], stack: deleted, kind: "mismatched-free") == nil)
        #expect(SuppressionMatcher.matchBadFree([s[0]], stack: deleted, kind: "double-free") == nil, "free is not delete")
    }

    @Test func generatedEntryForABadFreeSuppressesIt() throws {
        // libstdc++'s operator delete called free: its frame is the deallocation function.
        let b = badFree("double-free", via: "free", [
            frame("_ZdlPv", module: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"), frame("_ZN3Foo7releaseEv"), frame("main"),
        ])
        let entry = SuppressionWriter.entry(for: b)
        #expect(entry == "{\n   <insert_a_suppression_name_here>\n   Memcheck:Free\n   fun:_ZdlPv\n   fun:_ZN3Foo7releaseEv\n   fun:main\n}\n")
        let s = try SuppressionParser.parse(entry, file: "g.supp")
        #expect(SuppressionMatcher.matchBadFree(s, stack: MatchFrame.stack(b.stack, via: b.record.via), kind: "double-free") == 0)
    }
}

@Suite struct DefaultSuppressionTests {
    let core = "/opt/swift/usr/lib/swift/linux/libswiftCore.so"
    let xctest = "/opt/swift/usr/lib/swift/linux/libXCTest.so"
    let main = "$s6XCTest11XCTMainMisc_9arguments9observersAA19TestSuiteOrExitCodeOSayAA0A4CaseCm04testK5Class_SaySS_yAHKctG8allTeststG_SaySSGSayAA0A11Observation_pGSgtF"

    func match(_ stack: [Frame], _ kind: LeakKind) -> String? {
        SuppressionMatcher.match(DefaultSuppressions.all, stack: MatchFrame.stack(stack, via: "malloc"), kind: kind)
            .map { DefaultSuppressions.all[$0].name }
    }

    @Test func everyEntryParsesAndIsBuiltIn() {
        #expect(DefaultSuppressions.all.count == DefaultSuppressions.text.components(separatedBy: "\n{").count - 1)
        #expect(DefaultSuppressions.all.count == 11)
        #expect(DefaultSuppressions.all.allSatisfy { $0.builtIn && $0.needsSymbols && $0.file == DefaultSuppressions.file })
    }

    @Test func xctestsOwnBlocksAreTakenATestsLeakIsNot() {
        let alloc = [frame("swift_slowAlloc", module: core), frame("swift_allocObject", module: core)]
        #expect(match(alloc + [frame(main, module: xctest)], .definitelyLost) == "swift-xctest-xctmain-objects")
        // The test case object XCTMain makes: the user's allocating init(name:testClosure:).
        let testCase = alloc + [frame("$s10CleanTestsAAC4name11testClosureABSS_y6XCTest0F4CaseCKctcfC"), frame(main, module: xctest)]
        #expect(match(testCase, .indirectlyLost) == "swift-xctest-test-case-objects")
        #expect(match(testCase, .definitelyLost) == nil, "only as part of XCTest's tree")
        // A retain cycle made by a test: the user's frames sit under swift_allocObject.
        let cycle = alloc + [frame("$s4Leak4NodeCACycfC"), frame("$s4Leak0A5TestsC9testCycleyyF"),
                             frame("$s4Leak0A5TestsC9testCycleyyFTo"), frame("$s6XCTest0A4CaseC10invokeTestyyF", module: xctest)]
        #expect(match(cycle, .definitelyLost) == nil && match(cycle, .indirectlyLost) == nil)
        // A test that calls XCTMain-made helpers is still the user's: nothing names XCTest below it.
        #expect(match(alloc + [frame("$s4Leak6helperyyF"), frame(main, module: xctest)], .indirectlyLost) == nil)
    }
}
