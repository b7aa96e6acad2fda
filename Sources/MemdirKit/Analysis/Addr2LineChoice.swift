// Addr2LineChoice.swift: which addr2line reads a module file. A record made on aarch64 and read
// on x86-64 (or the other way) names files of another machine, which the host's addr2line
// cannot read. The file's ELF machine (e_machine) picks the tool: `--addr2line` when given, else
// MEMDIR_ADDR2LINE when set (either one for every machine), then the cross binutils'
// `<triple>-addr2line`, then `llvm-addr2line` (reads every machine), then a plain `addr2line`
// whose --help lists the machine's target (binutils-multiarch).

/// An ELF machine memdir knows how to pick an addr2line for.
public struct ELFMachine: Equatable, Hashable, Sendable {
    public var number: UInt16
    /// As `uname -m` and the tracker's `machine=` spell it.
    public var name: String
    /// The GNU triple's prefix of the cross binutils (`aarch64-linux-gnu-addr2line`).
    var triple: String
    /// What binutils' `addr2line --help` lists when it reads this machine.
    var bfdTarget: String

    public static let x86_64 = ELFMachine(number: 62, name: "x86_64", triple: "x86_64-linux-gnu", bfdTarget: "elf64-x86-64")
    public static let aarch64 = ELFMachine(number: 183, name: "aarch64", triple: "aarch64-linux-gnu", bfdTarget: "elf64-littleaarch64")
    public static let known = [x86_64, aarch64]

    /// The machine memdir itself runs on.
    public static var host: ELFMachine? {
        #if arch(x86_64)
        return .x86_64
        #elseif arch(arm64)
        return .aarch64
        #else
        return nil
        #endif
    }

    /// The machine of an ELF file (e_machine); nil when it cannot be read or is another one.
    public static func of(path: String) -> ELFMachine? {
        let number = ELFReader.with(path: path) { _, header -> UInt16? in UInt16(ELFReader.le(header, 18, 2)) }
        return number.flatMap { n in known.first { $0.number == n } }
    }
}

enum Addr2LineChoice {
    /// The override: MEMDIR_ADDR2LINE (a path or a name on PATH), used for every machine.
    static var override: String? {
        guard let value = environmentValue("MEMDIR_ADDR2LINE"), !value.isEmpty else { return nil }
        return value
    }

    /// The executable a chosen addr2line names (`setting` says who chose it: `--addr2line` or
    /// MEMDIR_ADDR2LINE), or status 18 when there is none.
    static func usable(_ value: String, setting: String) throws(MemdirError) -> String {
        guard let found = findExecutable(value) else {
            throw .addr2lineUnusable(value: value, setting: setting,
                                     reason: value.contains("/") ? "no such file" : "not found on PATH")
        }
        guard found.executable else { throw .addr2lineUnusable(value: value, setting: setting, reason: "not an executable file") }
        return found.path
    }

    /// An addr2line that reads `machine`'s files, or nil when none is installed. `chosen` is the
    /// one `--addr2line` named (MEMDIR_ADDR2LINE's when nil).
    static func tool(for machine: ELFMachine, host: String, chosen: String? = nil) -> String? {
        if let value = chosen ?? override { return findExecutable(value).flatMap { $0.executable ? $0.path : nil } }
        if machine == ELFMachine.host { return host }
        for name in ["\(machine.triple)-addr2line", "llvm-addr2line"] {
            if let found = findExecutable(name), found.executable { return found.path }
        }
        if let found = findExecutable("addr2line"), found.executable, reads(found.path, machine) { return found.path }
        return nil
    }

    /// Whether binutils' addr2line lists the machine among its supported targets.
    static func reads(_ executable: String, _ machine: ELFMachine) -> Bool {
        guard let result = try? runSubprocess([executable, "--help"], input: []) else { return false }
        return String(decoding: result.stdout, as: UTF8.self).contains(machine.bfdTarget)
    }

    /// The one-line reason frames of `machine` stay unresolved.
    static func missing(_ machine: ELFMachine) -> String {
        "no addr2line reads \(machine.name) files: install binutils-\(machine.triple) or llvm, or set MEMDIR_ADDR2LINE"
    }
}
