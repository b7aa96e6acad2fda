// DefaultSuppressions.swift: memdir's default.supp, as valgrind's: the leaks of the toolchain's
// own runtimes that every program using them inherits, in valgrind's format (the same text works
// as a valgrind suppressions file). Applied after the user's files by `run`, `resolve` and `list`
// unless `--default-suppressions=no`; counted as suppressed, on one line of the text summary.
//
// Each entry names the runtime's own functions at the top of the stack (several frames, mangled
// as valgrind prints them), never a whole library: a block the user's code allocates, in a test
// too, has the user's frames there and is still reported. Found by running a leak-free Swift test
// package's xctest binary, a plain Swift program and a Swift Testing run under memdir and under
// valgrind 3.19 (which counts the same definitely and indirectly lost blocks, and more possibly
// lost ones), with Swift 6.3 on Debian 12. C and C++ programs
// (glibc, libstdc++ with its emergency pool) show nothing at exit: no entries for them.
// `fun:*` as the first frame: the allocation function (malloc, or posix_memalign when the
// runtime asks for a larger alignment).

public enum DefaultSuppressions {
    /// The name shown as the entries' file.
    public static let file = "(default suppressions)"

    public static let text = """
        # ---- XCTest (swift-corelibs-xctest): XCTMain builds the tree of suites, test case objects
        # and their runs, and never releases it (exit ends the process from inside XCTMain). Its
        # root is definitely lost, the rest indirectly; the count grows with the number of tests.
        {
           swift-xctest-xctmain-objects
           Memcheck:Leak
           match-leak-kinds: definite,indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           fun:$s6XCTest11XCTMainMisc_*
        }
        {
           swift-xctest-xctmain-arrays
           Memcheck:Leak
           match-leak-kinds: indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           fun:$ss22_ContiguousArrayBufferV20_consumeAndCreateNew*
           fun:$sSa*
           fun:$s6XCTest11XCTMainMisc_*
        }
        # The test case objects XCTMain makes with the required init(name:testClosure:), what
        # XCTestCase.init allocates for them, and what the test class's stored properties hold
        # from its initializer: referenced by the leaked tree only. A test's own leak is made
        # while it runs, under XCTestCase.invokeTest, and is not matched.
        {
           swift-xctest-test-case-objects
           Memcheck:Leak
           match-leak-kinds: indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           ...
           fun:$s*C4name11testClosure*fC
           fun:$s6XCTest11XCTMainMisc_*
        }
        {
           swift-xctest-suite-runs
           Memcheck:Leak
           match-leak-kinds: indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           fun:$s6XCTest0A8SuiteRunC4test*
        }
        {
           swift-xctest-case-runs
           Memcheck:Leak
           match-leak-kinds: indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           fun:$s6XCTest0A7CaseRunC4test*
        }
        {
           swift-xctest-suite-run-arrays
           Memcheck:Leak
           match-leak-kinds: indirect
           fun:*
           fun:swift_slowAlloc
           fun:swift_allocObject
           fun:$ss22_ContiguousArrayBufferV20_consumeAndCreateNew*
           fun:$sSa*
           fun:$s6XCTest0A8SuiteRunC07addTestC0*
        }
        # The side table of an object XCTest's expectation machinery keeps a weak reference to.
        {
           swift-xctest-await-weak-reference
           Memcheck:Leak
           match-leak-kinds: definite
           fun:*
           fun:swift_slowAlloc
           fun:_ZN5swift9RefCounts*formWeakReference*
           fun:swift_weakAssign
           fun:$s6XCTest21awaitUsingExpectation*
        }

        # ---- The Swift runtime's metadata caches (every Swift program): lock-free hash maps and
        # caches whose storage is reached only through tagged or interior pointers, so possibly
        # lost.
        {
           swift-runtime-concurrent-hash-map
           Memcheck:Leak
           match-leak-kinds: possible
           fun:*
           fun:_ZN5swift25ConcurrentReadableHashMap*
        }
        {
           swift-runtime-locking-concurrent-map
           Memcheck:Leak
           match-leak-kinds: possible
           fun:*
           fun:_ZN5swift20LockingConcurrentMap*
        }
        {
           swift-runtime-witness-table-cache
           Memcheck:Leak
           match-leak-kinds: possible
           fun:*
           fun:swift_getWitnessTable
        }

        # ---- libdispatch's worker threads (Swift concurrency, XCTest, Swift Testing): they live
        # until exit; glibc's thread-local storage vector of each is reached through a pointer
        # into it. Only threads libdispatch creates: a program's own threads are still reported.
        {
           libdispatch-worker-thread-tls
           Memcheck:Leak
           match-leak-kinds: possible
           fun:calloc
           ...
           fun:*_dl_allocate_tls
           ...
           fun:*pthread_create*
           fun:_dispatch_*
        }
        """

    /// The parsed entries, marked `builtIn`. The text is tested to parse whole
    /// (SuppressionTests), so a failure here cannot ship.
    public static let all: [Suppression] = {
        let parsed = (try? SuppressionParser.parse(text, file: file)) ?? []
        return parsed.map { var s = $0; s.builtIn = true; return s }
    }()
}
