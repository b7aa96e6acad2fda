// main.swift: the memdir executable. Everything is in MemdirKit; this only wires the streams.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MemdirKit

exit(MemdirCLI.main(Array(CommandLine.arguments.dropFirst()), console: .standard))
