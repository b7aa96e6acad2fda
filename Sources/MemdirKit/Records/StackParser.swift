// StackParser.swift: THE parser of a recorded stack, frames innermost first as comma-separated
// numbers (`0x401136,0x7f3a2c02a1ca`). Every record that carries a stack reads it here: a block
// record of format 1 (`stack=`), a bad free (`stack=`, `alloc-stack=`, `free-stack=`), a mapping
// or segment record, and each line of format 2's `stacks` file (where every frame is `0x` hex).

enum StackParser {
    /// Appends the frames in `b[start..<end]` to `stack`. Nil when they all parsed; otherwise the
    /// range of the first item that is not a frame, and `stack` is as it was. An empty range is
    /// an empty stack (no frames could be taken). `hexOnly`: every frame must be written `0x...`.
    static func parse(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int, hexOnly: Bool = false,
                      into stack: inout [UInt64]) -> Range<Int>? {
        if start == end { return nil }
        let first = stack.count
        var itemStart = start
        var i = start
        while true {
            while i < end && b[i] != UInt8(ascii: ",") { i += 1 }
            let written = !hexOnly || (i - itemStart >= 3 && b[itemStart] == UInt8(ascii: "0") && b[itemStart + 1] == UInt8(ascii: "x"))
            guard written, let value = BlockParser.number(b, itemStart, i) else {
                stack.removeSubrange(first...)
                return itemStart..<i
            }
            stack.append(value)
            if i >= end { return nil }
            i += 1
            itemStart = i
        }
    }

    /// The frames of a stack value in a text record; nil when an item is not a number.
    static func parse<S: StringProtocol>(_ text: S) -> [UInt64]? {
        var value = String(text)
        return value.withUTF8 { utf8 -> [UInt64]? in
            var stack: [UInt64] = []
            return parse(UnsafeRawBufferPointer(utf8), 0, utf8.count, into: &stack) == nil ? stack : nil
        }
    }
}
