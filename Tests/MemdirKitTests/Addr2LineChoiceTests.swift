// Addr2LineChoiceTests.swift: the ELF machine read from a module file picks the addr2line.

import Foundation
import Testing
@testable import MemdirKit

@Suite struct Addr2LineChoiceTests {
    /// A 64-byte ELF64 little-endian header with only e_machine set.
    func header(machine: UInt16) throws -> String {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[0...5] = [0x7F, 0x45, 0x4C, 0x46, 2, 1]
        bytes[18] = UInt8(machine & 0xff)
        bytes[19] = UInt8(machine >> 8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("memdir-elf-\(getpid())-\(machine)").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    @Test func machineOfFiles() throws {
        let arm = try header(machine: 183), x86 = try header(machine: 62), riscv = try header(machine: 243)
        defer { for p in [arm, x86, riscv] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(ELFMachine.of(path: arm) == .aarch64)
        #expect(ELFMachine.of(path: x86) == .x86_64)
        #expect(ELFMachine.of(path: riscv) == nil)               // not one memdir picks a tool for
        #expect(ELFMachine.of(path: "/nonexistent/module") == nil)
        #expect(ELFMachine.of(path: "/proc/self/exe") == ELFMachine.host)
    }

    @Test func missingToolMessage() {
        #expect(Addr2LineChoice.missing(.aarch64)
                == "no addr2line reads aarch64 files: install binutils-aarch64-linux-gnu or llvm, or set MEMDIR_ADDR2LINE")
    }

    @Test func hostMachineUsesTheHostTool() throws {
        let host = try #require(ELFMachine.host)
        if Addr2LineChoice.override == nil {
            #expect(Addr2LineChoice.tool(for: host, host: "/usr/bin/addr2line") == "/usr/bin/addr2line")
        }
    }
}
