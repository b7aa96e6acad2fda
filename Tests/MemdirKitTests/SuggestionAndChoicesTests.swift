// SuggestionAndChoicesTests.swift: the edit distance behind "did you mean", and the value
// choices completion and the man page take from an option's declaration.

import Testing
@testable import MemdirKit

@Suite struct SuggestionAndChoicesTests {
    @Test func editDistance() {
        #expect(Suggestion.distance("lsit", "list") == 1, "a swap of neighbours counts one")
        #expect(Suggestion.distance("--josn", "--json") == 1)
        #expect(Suggestion.distance("snapshots", "snapshot") == 1)
        #expect(Suggestion.distance("reslove", "resolve") == 1)
        #expect(Suggestion.distance("", "run") == 3 && Suggestion.distance("stats", "stats") == 0)
        #expect(Suggestion.distance("frobnicate", "resolve") > 2)
    }

    @Test func closestIsNearEnough() {
        let names = MemdirCLI.allCommands.map { $0.name }
        #expect(Suggestion.closest("lsit", among: names) == "list")
        #expect(Suggestion.closest("wacth", among: names) == "watch")
        #expect(Suggestion.closest("ls", among: names) == nil, "two edits in a two-letter word is a guess")
        #expect(Suggestion.closest("x", among: names) == nil)
        #expect(Suggestion.closest("--jsn", among: ListCommand.options.map(\.name)) == "--json")
        #expect(Suggestion.didYouMean("frobnicate", among: names) == "")
    }

    @Test func choicesFromTheDeclaration() {
        #expect(OptionSpec("--by", value: "caller|frame|stack", help: "").choices == ["caller", "frame", "stack"])
        #expect(OptionSpec("--color", value: "auto|always|never", help: "").valueKind == .choices)
        #expect(OptionSpec("--x", value: "PID|DIR", help: "").choices == [], "placeholders in capitals are not values")
        #expect(OptionSpec("--kinds", value: "KINDS", choices: ["all", "none"], help: "").choices == ["all", "none"])
        #expect(OptionSpec("--json-file", value: "FILE", help: "").valueKind == .file)
        #expect(OptionSpec("--dir", value: "DIR", help: "").valueKind == .directory)
        #expect(OptionSpec("--top", value: "N", help: "").valueKind == .text)
        #expect(OptionSpec("--json", help: "").valueKind == .none)
    }
}
