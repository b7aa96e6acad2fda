// InterposerLayerTests.swift: draws the structure of Sources/MemtrackInterposer from the sources
// themselves and checks it against the layer order declared at the top of base.h (issue 19).
//
// The drawing has one node per file: each .c is compiled on its own (gcc -c, as README's plain
// build does) and `nm` says which symbols the object defines and which it uses; a use of a
// symbol another object defines is an arrow to that file. `#include "..."` lines are arrows
// too (a header belongs to the layer of its .c, or to the one base.h names it in). Asserted:
// no arrow into a higher layer except the allowed ones below, and no circle at all.

import Foundation
import Testing

enum InterposerLayers {
    /// Arrows that may run up, each with its reason (at most two; the call site says why too).
    static let allowedUpward: [String: String] = [:]

    struct Arrow: Hashable, Comparable, CustomStringConvertible {
        var from: String, to: String, because: String
        var description: String { "\(from) -> \(to) (\(because))" }
        static func < (a: Arrow, b: Arrow) -> Bool { (a.from, a.to, a.because) < (b.from, b.to, b.because) }
    }

    struct Drawing {
        var layerOf: [String: Int] = [:]      // file name -> layer index, 0 at the bottom
        var layerNames: [String] = []
        var arrows: Set<Arrow> = []
    }

    static var sourceDirectory: URL { InterposerStructure.sourceDirectory }

    /// `layer NAME: file file ...` lines of base.h's opening comment, bottom first. A .c file
    /// brings its .h along.
    static func declaredLayers() throws -> (names: [String], layerOf: [String: Int]) {
        let text = try String(contentsOf: sourceDirectory.appendingPathComponent("base.h"), encoding: .utf8)
        var names: [String] = [], layerOf: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "*" || $0 == "/" }
            guard trimmed.hasPrefix("layer "), let colon = trimmed.firstIndex(of: ":") else { continue }
            names.append(String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 6)..<colon]))
            for file in trimmed[trimmed.index(after: colon)...].split(separator: " ") {
                layerOf[String(file)] = names.count - 1
                if file.hasSuffix(".c") { layerOf[String(file.dropLast(2)) + ".h"] = names.count - 1 }
            }
        }
        return (names, layerOf)
    }

    static func sources(_ suffix: String) -> [String] {
        (FileManager.default.enumerator(atPath: sourceDirectory.path)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(suffix) && !$0.hasPrefix("include/") && !$0.hasPrefix("link/") }.sorted()
    }

    /// Compiles every .c into `directory` and reads the objects' symbols.
    static func draw(objectsIn directory: URL) throws -> Drawing {
        var drawing = Drawing()
        (drawing.layerNames, drawing.layerOf) = try declaredLayers()
        var defines: [String: String] = [:], uses: [String: Set<String>] = [:]
        for file in sources(".c") {
            let object = directory.appendingPathComponent(file.replacingOccurrences(of: "/", with: "_") + ".o").path
            let compile = runProgram("/usr/bin/gcc", ["-c", "-fPIC", "-O2", "-D_GNU_SOURCE", "-fvisibility=hidden",
                                                      "-I", "include", file, "-o", object],
                                     environment: E2E.cleanEnvironment(), currentDirectory: sourceDirectory, timeout: 300)
            guard compile.exitedNormally && compile.status == 0 else {
                throw HarnessError("gcc -c \(file) failed (\(compile.statusDescription)):\n\(compile.stderrText)")
            }
            let nm = runProgram("/usr/bin/nm", ["-P", object], environment: E2E.cleanEnvironment(), timeout: 60)
            guard nm.exitedNormally && nm.status == 0 else { throw HarnessError("nm \(object) failed: \(nm.stderrText)") }
            for line in nm.stdoutText.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count >= 2 else { continue }
                let name = String(fields[0]), type = fields[1]
                if type == "U" { uses[file, default: []].insert(name) }
                else if let letter = type.first, letter.isUppercase, letter != "N" { defines[name] = file }   // global definitions
            }
        }
        for (file, names) in uses {
            for name in names {
                if let owner = defines[name], owner != file { drawing.arrows.insert(Arrow(from: file, to: owner, because: name)) }
            }
        }
        // #include "..." lines, of .c and .h files alike, resolved against the including file's folder.
        for file in sources(".c") + sources(".h") {
            let text = try String(contentsOf: sourceDirectory.appendingPathComponent(file), encoding: .utf8)
            let folder = (file as NSString).deletingLastPathComponent
            for line in text.split(separator: "\n") where line.hasPrefix("#include \"") {
                let name = line.split(separator: "\"")[1]
                let target = folder.isEmpty ? String(name) : folder + "/" + name
                drawing.arrows.insert(Arrow(from: file, to: target, because: "#include"))
            }
        }
        return drawing
    }

    /// Arrows into a higher layer, minus the allowed ones.
    static func upward(_ drawing: Drawing) -> [Arrow] {
        drawing.arrows.filter { arrow in
            guard let from = drawing.layerOf[arrow.from], let to = drawing.layerOf[arrow.to] else { return false }
            return to > from && allowedUpward["\(arrow.from) -> \(arrow.to)"] == nil
        }.sorted()
    }

    /// A circle among the files (allowed arrows included), as the list of files on it; empty if none.
    static func circle(_ drawing: Drawing) -> [String] {
        var next: [String: Set<String>] = [:]
        for arrow in drawing.arrows { next[arrow.from, default: []].insert(arrow.to) }
        var state: [String: Int] = [:]   // 1 on the path, 2 done
        var path: [String] = []
        func visit(_ node: String) -> [String]? {
            state[node] = 1
            path.append(node)
            for target in (next[node] ?? []).sorted() {
                if state[target] == 1 { return Array(path[path.firstIndex(of: target)!...]) + [target] }
                if state[target] == nil, let found = visit(target) { return found }
            }
            path.removeLast()
            state[node] = 2
            return nil
        }
        for node in next.keys.sorted() where state[node] == nil {
            if let found = visit(node) { return found }
        }
        return []
    }
}

extension EndToEnd {
    @Suite struct InterposerLayerTests {
        @Test("the interposer's files: every file in one declared layer, arrows only downward, no circle")
        func layers() throws {
            try withScratch { scratch in
                let drawing = try InterposerLayers.draw(objectsIn: scratch.root)
                #expect(drawing.layerNames.count >= 8, "base.h declares the layers: \(drawing.layerNames)")
                let files = InterposerLayers.sources(".c") + InterposerLayers.sources(".h")
                let undeclared = files.filter { drawing.layerOf[$0] == nil }
                #expect(undeclared.isEmpty, "files in no layer of base.h: \(undeclared)")
                #expect(drawing.arrows.count > 50, "the drawing has too few arrows to be real: \(drawing.arrows.count)")
                #expect(InterposerLayers.allowedUpward.count <= 2)
                let up = InterposerLayers.upward(drawing).map { arrow in
                    "\(arrow) [\(drawing.layerNames[drawing.layerOf[arrow.from]!]) -> \(drawing.layerNames[drawing.layerOf[arrow.to]!])]"
                }
                #expect(up.isEmpty, "arrows into a higher layer:\n\(up.joined(separator: "\n"))")
                let circle = InterposerLayers.circle(drawing)
                #expect(circle.isEmpty, "a circle: \(circle.joined(separator: " -> "))")
            }
        }
    }
}
