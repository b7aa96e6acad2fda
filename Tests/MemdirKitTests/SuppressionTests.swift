// SuppressionTests.swift: both suppression formats (files written in the style of real
// projects' files: comments, blank lines, tabs, `...`, other tools' entries), matching with
// wildcards, the allocation-function frame, `--gen-suppressions`, and the bad-file statuses.

import Testing
@testable import MemdirKit

/// valgrind's style, as projects keep them (GLib, Python, GStreamer...): tab or space indents,
/// entries for other tools and kinds, `match-leak-kinds` with and without a space.
let valgrindStyleFile = """
    #
    # Valgrind suppression file for the test programs.
    # Format: http://valgrind.org/docs/manual/manual-core.html#manual-core.suppress
    #

    # ---- GLib-like: one-time type registrations
    {
    \tg-type-register-static
    \tMemcheck:Leak
    \tmatch-leak-kinds:possible,reachable
    \tfun:*alloc
    \t...
    \tfun:g_type_register_static
    }

    {
       ADDRESS_IN_RANGE/Invalid read of size 4
       Memcheck:Addr4
       fun:address_in_range
    }

    {
       Syscall param write(buf) points to uninitialised byte(s)
       Memcheck:Param
       write(buf)
       fun:write
       obj:/lib/libc-2.3.4.so
    }
    {
       <insert_a_suppression_name_here>
       Memcheck:Leak
       match-leak-kinds: definite
       fun:_Znwm
       fun:_ZL15leak_everythingv
       fun:main
    }
    {
       libasound
       Memcheck:Leak
       ...
       fun:calloc
       obj:/usr/lib/libasound.so.*
       ...
    }
    {
       one-letter wildcard
       Memcheck,Helgrind:Leak
       fun:mallo?
       src:plugin.c:1?
    }

    """

/// LSan's style (Chromium, Node): comments, blank lines, other sanitizers' types.
let lsanStyleFile = """
    # Leaks in third-party code we cannot fix.

    leak:libfontconfig
    # V8 keeps these for the life of the process
    leak:v8::internal::Isolate::Init
    leak:^strdup$
    leak:*pool_grow*
    race:some_racy_function
    interceptor_via_fun:foo

    """

@Suite struct SuppressionParserTests {
    @Test func valgrindFormat() throws {
        let s = try SuppressionParser.parse(valgrindStyleFile, file: "v.supp")
        #expect(s.map(\.name) == ["g-type-register-static", "<insert_a_suppression_name_here>", "libasound", "one-letter wildcard"])
        #expect(s.map(\.line) == [7, 29, 37, 45])
        #expect(s[0].kinds == [.possiblyLost, .stillReachable])
        #expect(s[0].pattern == .valgrind([.function("*alloc"), .anyFrames, .function("g_type_register_static")]))
        #expect(s[1].kinds == [.definitelyLost])
        #expect(s[2].kinds == nil)
        #expect(s[2].pattern == .valgrind([.anyFrames, .function("calloc"), .object("/usr/lib/libasound.so.*"), .anyFrames]))
        #expect(s[3].pattern == .valgrind([.function("mallo?"), .source("plugin.c:1?")]))
        #expect(s[2].needsSymbols && !Suppression(name: "", file: "", line: 1, pattern: .valgrind([.object("*"), .function("*")])).needsSymbols)
    }

    @Test func lsanFormat() throws {
        let s = try SuppressionParser.parse(lsanStyleFile, file: "l.supp")
        #expect(s.map(\.pattern) == [.lsan("libfontconfig"), .lsan("v8::internal::Isolate::Init"), .lsan("^strdup$"), .lsan("*pool_grow*")])
        #expect(s.map(\.line) == [3, 5, 6, 7])
        #expect(s.allSatisfy { $0.kinds == nil })
    }

    @Test func bothFormatsInOneFile() throws {
        let s = try SuppressionParser.parse("leak:foo\n{\n x\n Memcheck:Leak\n fun:bar\n}\nleak:baz\n", file: "m.supp")
        #expect(s.map(\.pattern) == [.lsan("foo"), .valgrind([.function("bar")]), .lsan("baz")])
    }

    @Test func malformedFiles() {
        func error(_ text: String) -> MemdirError? {
            do { _ = try SuppressionParser.parse(text, file: "b.supp"); return nil } catch { return error }
        }
        #expect(error("{\n name\n Memcheck:Leak\n fun:main\n") == .malformedSuppressions(path: "b.supp", line: 1, reason: "entry not closed with '}'"))
        #expect(error("\n{\n name\n Memcheck:Leak\n frob:main\n}\n")
                == .malformedSuppressions(path: "b.supp", line: 5, reason: "expected fun:, obj:, src: or ..., found 'frob:main'"))
        #expect(error("{\n name\n Memcheck:Leak\n match-leak-kinds: sometimes\n}\n")
                == .malformedSuppressions(path: "b.supp", line: 4, reason: "bad match-leak-kinds 'sometimes'"))
        #expect(error("just some words\n") == .malformedSuppressions(path: "b.supp", line: 1, reason: "expected 'leak:PATTERN' or a '{' entry"))
        #expect(error("leak:\n") == .malformedSuppressions(path: "b.supp", line: 1, reason: "empty pattern"))
        #expect(error("{\n only-a-name\n}\n") == .malformedSuppressions(path: "b.supp", line: 1, reason: "entry needs a name and a Tool:Kind line"))
    }
}

@Suite struct SuppressionMatchTests {
    /// main -> leak_everything -> operator new (libstdc++) -> malloc, as resolve sees it.
    let cxxStack = [
        Frame(address: 0x7f0000010000, module: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", offset: 0xa958c,
              symbols: [Symbol(function: "operator new(unsigned long)", file: nil, line: nil, mangled: "_Znwm")]),
        Frame(address: 0x401258, module: "/work/cxx_new", offset: 0x1258,
              symbols: [Symbol(function: "leak_everything()", file: "/work/cxx_new.cpp", line: 16, mangled: "_ZL15leak_everythingv")]),
        Frame(address: 0x40135b, module: "/work/cxx_new", offset: 0x135b,
              symbols: [Symbol(function: "main", file: "/work/cxx_new.cpp", line: 22, mangled: "main")]),
    ]
    /// A plugin's function inlined into its caller, allocating with calloc.
    let pluginStack = [
        Frame(address: 0x7f1000002000, module: "/usr/lib/libasound.so.2.0.0", offset: 0x2000,
              symbols: [Symbol(function: "snd_alloc", file: "/src/plugin.c", line: 12, mangled: "snd_alloc"),
                        Symbol(function: "snd_open", file: "/src/plugin.c", line: 40, mangled: "snd_open")]),
        Frame(address: 0x401100, module: "/work/prog", offset: 0x1100, symbols: []),
    ]

    func match(_ file: String, _ frames: [Frame], via: String = "malloc", kind: LeakKind = .definitelyLost) throws -> String? {
        let s = try SuppressionParser.parse(file, file: "f.supp")
        return SuppressionMatcher.match(s, stack: MatchFrame.stack(frames, via: via), kind: kind).map { s[$0].name }
    }

    @Test func valgrindStackShape() {
        let shape = MatchFrame.stack(cxxStack, via: "malloc")
        #expect(shape.map { $0.mangled ?? "?" } == ["_Znwm", "_ZL15leak_everythingv", "main"])
        #expect(shape[0].object == "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so")
        let plugin = MatchFrame.stack(pluginStack, via: "calloc")
        #expect(plugin.map { $0.mangled ?? "?" } == ["calloc", "snd_alloc", "snd_open", "?"])
        #expect(plugin[3].object == "/work/prog")
    }

    @Test func valgrindEntries() throws {
        // valgrind's own generated entry for cxx_new.cpp:16, unchanged.
        #expect(try match(valgrindStyleFile, cxxStack) == "<insert_a_suppression_name_here>")
        #expect(try match(valgrindStyleFile, cxxStack, kind: .stillReachable) == nil, "match-leak-kinds: definite")
        #expect(try match(valgrindStyleFile, cxxStack, kind: .notClassified) == nil)
        // `...`, `fun:calloc` as the entry point, obj: with `*`, trailing `...`.
        #expect(try match(valgrindStyleFile, pluginStack, via: "calloc") == "libasound")
        #expect(try match(valgrindStyleFile, pluginStack, via: "malloc") == "one-letter wildcard", "fun:mallo? src:plugin.c:1?")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:malloc\n fun:snd_alloc\n fun:snd_open\n obj:*/prog\n}\n", pluginStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:malloc\n fun:snd_open\n}\n", pluginStack) == nil, "inlined frames count")
        #expect(try match("{\n a\n Memcheck:Leak\n ...\n fun:main\n}\n", cxxStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n ...\n fun:main\n fun:__libc_start_main\n}\n", cxxStack) == nil, "the stack ends first")
        // Demangled names are accepted too; `?` is one character.
        #expect(try match("{\n a\n Memcheck:Leak\n fun:operator new*\n fun:leak_everything()\n}\n", cxxStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:_Znw?\n fun:_ZL1?leak*\n}\n", cxxStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:_Znw?\n fun:_ZL?leak*\n}\n", cxxStack) == nil)
        // An unknown function is "???"; src: takes the file name with or without the line.
        #expect(try match("{\n a\n Memcheck:Leak\n ...\n fun:???\n}\n", pluginStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:*\n src:plugin.c:12\n}\n", pluginStack) == "a")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:*\n src:plugin.c:13\n}\n", pluginStack) == nil)
    }

    @Test func valgrindNamesForTheSameAddress() throws {
        // The debug info names the base-object constructor; valgrind the complete-object one.
        #expect(MatchFrame.completeObjectName("_ZNSt6vectorIiSaIiEEC2EmRKiRKS0_") == "_ZNSt6vectorIiSaIiEEC1EmRKiRKS0_")
        #expect(MatchFrame.completeObjectName("_ZN7WidgetD2Ev") == "_ZN7WidgetD1Ev")
        #expect(MatchFrame.completeObjectName("_ZN7Widget2C2Ev") == "_ZN7Widget2C1Ev")
        #expect(MatchFrame.completeObjectName("main") == "main")
        var stack = cxxStack
        stack[1].symbols[0].mangled = "_ZN7WidgetC2Ev"
        #expect(try match("{\n a\n Memcheck:Leak\n fun:_Znam\n fun:_ZN7WidgetC1Ev\n}\n", stack) == "a",
                "operator new[] reaches malloc through operator new without a frame")
        #expect(try match("{\n a\n Memcheck:Leak\n fun:malloc\n fun:_ZN7WidgetC1Ev\n}\n", stack) == nil)
    }

    @Test func lsanPatterns() throws {
        #expect(try match("leak:leak_everything\n", cxxStack) == "leak:leak_everything")
        #expect(try match("leak:cxx_new.cpp\n", cxxStack) == "leak:cxx_new.cpp", "source file")
        #expect(try match("leak:/work/cxx\n", cxxStack) == "leak:/work/cxx", "module path")
        #expect(try match("leak:libstdc++\n", cxxStack) == nil, "operator new is the allocation function, as in LSan")
        #expect(try match("leak:^cxx_new$\n", cxxStack) == "leak:^cxx_new$", "module file name, anchored")
        #expect(try match("leak:^leak_everything$\n", cxxStack) == nil, "the function is leak_everything()")
        #expect(try match("leak:^leak_*()$\n", cxxStack) == "leak:^leak_*()$")
        #expect(try match("leak:malloc\n", cxxStack) == nil, "the allocation function itself is not in our stacks")
        #expect(try match(lsanStyleFile, cxxStack) == nil)
        #expect(SuppressionMatcher.lsanMatch("^a*c$", "abbc") && !SuppressionMatcher.lsanMatch("^a*c$", "abbcd"))
        #expect(SuppressionMatcher.lsanMatch("b*d", "abcde") && !SuppressionMatcher.lsanMatch("^b", "abc"))
    }

    @Test func generatedEntriesSuppressTheirGroup() throws {
        let group = LeakGroup(kind: .definitelyLost, blocks: 1, bytes: 4, stack: cxxStack + [
            Frame(address: 0x7f0000029d90, module: "/usr/lib/x86_64-linux-gnu/libc.so.6", offset: 0x29d90,
                  symbols: [Symbol(function: "__libc_start_call_main", file: nil, line: nil, mangled: "__libc_start_call_main")]),
        ], attributed: Attribution(frame: 1, symbol: 0),
           sample: BlockSample(address: 0x10, size: 4, seq: 1, thread: 1, ms: 0, via: "malloc", stack: []))
        // The writer writes the stack shown: the model has cut it at main (BelowMain).
        var shown = group
        shown.stack.removeLast(group.stack.count - BelowMain.shownCount(group.stack))
        #expect(shown.stack.count == cxxStack.count)
        let entry = SuppressionWriter.entry(for: shown)
        #expect(entry == """
            {
               <insert_a_suppression_name_here>
               Memcheck:Leak
               match-leak-kinds: definite
               fun:_Znwm
               fun:_ZL15leak_everythingv
               fun:main
            }

            """)
        #expect(try match(entry, group.stack) == "<insert_a_suppression_name_here>")
        var unknown = group
        unknown.kind = .notClassified
        unknown.stack = pluginStack
        unknown.sample.via = "calloc"
        #expect(SuppressionWriter.entry(for: unknown) == """
            {
               <insert_a_suppression_name_here>
               Memcheck:Leak
               fun:calloc
               fun:snd_alloc
               fun:snd_open
               obj:/work/prog
            }

            """)
    }
}

@Suite struct SuppressionCommandTests {
    func run(_ args: [String]) -> (Int32, String, String) {
        let c = Captured()
        return (MemdirCLI.main(args, console: c.console), c.out, c.err)
    }

    func fixture(_ t: TempDir) {
        t.run("4242")
        t.block("4242", address: 0x10, size: 10, seq: 1, stack: [0x401100, 0x401500])
        t.block("4242", address: 0x20, size: 20, seq: 2, stack: [0x7f1000002000, 0x401200])
        t.block("4242", address: 0x30, size: 30, seq: 3, stack: [0x7f1000002000, 0x401300])
        t.leakCheck("4242", seq: 3, lost: [(0x10, "definitely"), (0x20, "definitely"), (0x30, "possibly")])
    }

    @Test func listAppliesModulePatternsAndSaysSo() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        let supp = t.write("foo.supp", """
            # libfoo's one-time allocations
            {
               libfoo
               Memcheck:Leak
               match-leak-kinds: definite
               fun:malloc
               obj:*/libfoo.so.*
            }
            leak:main_helper

            """)
        let (status, out, err) = run(["list", t.path, "--suppressions", supp])
        #expect(status == 0 && err == "")
        #expect(out.contains("\n        suppressed: 20 bytes in 1 blocks\n"), "\(out)")
        #expect(out.contains("\n   definitely lost: 10 bytes in 1 blocks\n"), "\(out)")
        #expect(out.contains("\n     possibly lost: 30 bytes in 1 blocks\n"), "\(out)")
        #expect(out.contains("  suppressed by libfoo (\(supp):2): 20 bytes in 1 blocks\n"), "\(out)")
        #expect(out.contains("note: function names were not resolved (list, or run without addr2line): only the obj: and module patterns of the suppressions could match\n"))
        let (_, json, _) = run(["list", t.path, "--suppressions", supp, "--json"])
        #expect(json.contains("""
              "suppressions": [
                {
                  "name": "libfoo",
                  "file": "\(supp)",
                  "line": 2,
                  "blocks": 1,
                  "bytes": 20,
                  "bad_frees": 0,
                  "default": false
                }
              ],
            """), "\(json)")
    }

    @Test func badSuppressionFilesAndJSONFile() throws {
        let t = TempDir(); defer { t.remove() }
        fixture(t)
        #expect(run(["list", t.path, "--suppressions", t.path + "/nope.supp"])
                == (9, "", "memdir: error: cannot read suppressions file \(t.path)/nope.supp: no such file or directory\n"))
        let bad = t.write("bad.supp", "{\n  x\n  Memcheck:Leak\n  fun main\n}\n")
        #expect(run(["list", t.path, "--suppressions", bad])
                == (10, "", "memdir: error: malformed suppressions file \(bad):4: expected fun:, obj:, src: or ..., found 'fun main'\n"))
        #expect(run(["list", t.path, "--json-file", t.path + "/no/such/dir/r.json"])
                == (11, "", "memdir: error: cannot write \(t.path)/no/such/dir/r.json: no such file or directory\n"))
        let (status, out, _) = run(["list", t.path, "--json-file", t.path + "/r.json"])
        #expect(status == 0 && out.hasPrefix("process 4242 "))
        let written = try #require(try? String(contentsOfFile: t.path + "/r.json", encoding: .utf8))
        #expect(written.hasPrefix("{\n  \"schema\": \"memdir-report/2\",\n") && written.hasSuffix("\n}\n"))
        #expect(run(["list", t.path, "--show-leak-kinds", "definite,bogus"]).0 == 2)
        #expect(run(["list", t.path, "--gen-suppressions"]).1.contains(
            "   match-leak-kinds: possible\n   fun:malloc\n   obj:/usr/lib/libfoo.so.1\n   obj:/home/me/prog\n}\n"))
    }
}
