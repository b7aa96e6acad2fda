// ResolverTests.swift: symbolization with the real addr2line on programs compiled here.

import Testing
@testable import MemdirKit

@Suite struct ResolverTests {
    static let source = """
        #include <stdlib.h>
        void first(void) {
            abort();
        }
        int second(int x) {
            return x + 1;
        }
        int main(void) { return second(1); }

        """

    /// Compiles `source` with cc -g -O0 and returns (binary, offsets of symbols from nm).
    func compile(_ t: TempDir, _ source: String, file: String = "t.c", compiler: String = "cc") throws -> (String, [String: UInt64]) {
        let src = t.write(file, source)
        let bin = t.path + "/t.out"
        _ = try #require(shell([compiler, "-g", "-O0", "-o", bin, src]))
        let nm = try #require(shell(["nm", bin]))
        var symbols: [String: UInt64] = [:]
        for line in nm.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, let v = UInt64(parts[0], radix: 16) { symbols[String(parts[2])] = v }
        }
        return (bin, symbols)
    }

    @Test func functionFileLine() throws {
        let t = TempDir(); defer { t.remove() }
        let (bin, syms) = try compile(t, Self.source)
        let a2l = try Addr2Line.locate()
        let second = try #require(syms["second"])
        let result = a2l.symbolize(path: bin, offsets: [second])
        #expect(result.failure == nil)
        #expect(result.symbols[second] == [Symbol(function: "second", file: t.path + "/t.c", line: 5, mangled: "second")])
    }

    /// A return address that equals the start of `second` belongs to the call in `first` (a noreturn
    /// call is the last instruction of `first`): only the -1 adjustment gets that right.
    @Test func returnAddressAdjustment() throws {
        let t = TempDir(); defer { t.remove() }
        let (bin, syms) = try compile(t, Self.source)
        let second = try #require(syms["second"])
        // Precondition of the test: `first` is laid out just before `second`.
        let before = syms.filter { $0.value < second }.max { $0.value < $1.value }
        #expect(before?.key == "first")
        t.run("1", exe: bin, modules: "module seq=0 base=0x400000 start=0x400000 end=0x500000 path=\(bin)\n")
        t.block("1", address: 0x10, size: 1, seq: 1, stack: [0x400000 + second])
        let r = try ReportBuilder.build(directory: t.path, options: ReportOptions(grouping: .caller, resolve: true))
        #expect(r.processes[0].leaks[0].location == "first \(t.path)/t.c:3")
        #expect(ReportBuilder.adjusted(0x1000) == 0xfff)
        #expect(ReportBuilder.adjusted(0) == 0)
    }

    @Test func noDebugInfoFallsBackToModuleOffset() throws {
        let t = TempDir(); defer { t.remove() }
        let (bin, _) = try compile(t, Self.source)
        t.run("1", exe: bin, modules: "module seq=0 base=0x400000 start=0x400000 end=0x900000 path=\(bin)\n")
        t.block("1", address: 0x10, size: 1, seq: 1, stack: [0x400000 + 0x300001])  // far outside any function
        let r = try ReportBuilder.build(directory: t.path, options: ReportOptions(resolve: true))
        #expect(r.processes[0].leaks[0].location == "t.out+0x300001")
    }

    @Test func binaryOverridesTheMainExecutable() throws {
        let t = TempDir(); defer { t.remove() }
        let (bin, syms) = try compile(t, Self.source)
        let second = try #require(syms["second"])
        t.run("1", exe: "/nonexistent/stripped", modules: "module seq=0 base=0x400000 start=0x400000 end=0x500000 path=/nonexistent/stripped\n")
        t.block("1", address: 0x10, size: 1, seq: 1, stack: [0x400000 + second + 1])
        let c = Captured()
        #expect(MemdirCLI.main(["resolve", t.path, "--binary", bin], console: c.console) == 0)
        #expect(c.out.contains("1 block, 1 bytes at second \(t.path)/t.c:5\n"))
        #expect(c.out.contains("      -> #0 second \(t.path)/t.c:5\n"))
    }

    @Test func cplusplusNamesAndInlinedFrames() throws {
        let t = TempDir(); defer { t.remove() }
        let (bin, syms) = try compile(t, """
            namespace ns { int twice(int x) { return 2 * x; } }
            int main() { return ns::twice(3); }

            """, file: "t.cc", compiler: "c++")
        let mangled = try #require(syms.keys.first { $0.contains("twice") })
        let offset = try #require(syms[mangled])
        let result = try Addr2Line.locate().symbolize(path: bin, offsets: [offset])
        #expect(result.symbols[offset]?.first?.function == "ns::twice(int)")
    }

    @Test func parsesInlinedBlocks() {
        let out = """
            0x0000000000001149
            inner
            /src/a.c:10
            outer
            /src/a.c:20 (discriminator 2)
            0x0000000000002000
            ??
            ??:0
            0x0000000000003000
            $sSi
            ??:?
            0x0000000000004000
            swift::threading_impl::once_slow
            crtstuff.c:?

            """
        let parsed = Addr2Line.parse(out)
        #expect(parsed[0x1149] == [Symbol(function: "inner", file: "/src/a.c", line: 10, mangled: "inner"),
                                  Symbol(function: "outer", file: "/src/a.c", line: 20, mangled: "outer")])
        #expect(parsed[0x2000] == [Symbol(function: nil, file: nil, line: nil)])
        #expect(parsed[0x3000] == [Symbol(function: "Swift.Int", file: nil, line: nil, mangled: "$sSi")])
        // A file without a line is not the address's: left out.
        #expect(parsed[0x4000] == [Symbol(function: "swift::threading_impl::once_slow", file: nil, line: nil, mangled: "swift::threading_impl::once_slow")])
        let frame = Frame(address: 0x401149, module: "/bin/p", offset: 0x1149, symbols: parsed[0x1149]!)
        #expect(frame.describe(symbol: 0) == "inner /src/a.c:10")
        #expect(Frame(address: 0x2000, module: "/bin/p", offset: 0x2000, symbols: parsed[0x2000]!).describe() == "p+0x2000")
        #expect(Frame(address: 0x3000, module: "/bin/p", offset: 0x3000, symbols: parsed[0x3000]!).describe() == "Swift.Int (p+0x3000)")
    }

    @Test func swiftDemangling() {
        #expect(Demangler.demangle("$sSi") == "Swift.Int")
        #expect(Demangler.demangle("_$sSS") == "Swift.String")
        #expect(Demangler.demangle("main") == "main")
    }

    @Test func functionWrappersMoveTheAttribution() {
        let frames = [
            Frame(address: 0x1, module: "/bin/p", offset: 0x1, symbols: [
                Symbol(function: "std::__new_allocator<int>::allocate(unsigned long, void const*)", file: "/usr/include/new_allocator.h", line: 151),
                Symbol(function: "my_factory()", file: "/src/p.cc", line: 7),
            ]),
            Frame(address: 0x2, module: "/bin/p", offset: 0x2, symbols: [Symbol(function: "main", file: "/src/p.cc", line: 12)]),
        ]
        #expect(ReportBuilder.attribute(frames, rules: WrapperRules()) == Attribution(frame: 0, symbol: 1))
        #expect(ReportBuilder.attribute(frames, rules: WrapperRules(extraFunctions: ["my_fact*"])) == Attribution(frame: 1, symbol: 0))
        #expect(ReportBuilder.attribute(frames, rules: WrapperRules(extraFunctions: ["my_fact*", "main"])) == Attribution(frame: 1, symbol: 0))
    }
}
